using System.Collections.Immutable;
using PacketDotNet;
using UserspaceDr.Admin;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>
/// Firewall-mark services in the engine: udr marks the frame as the site's mangle rules would and looks for the mark's
/// service first (ip_vs_service_find), then the address/port one; a persistent mark service keeps a client on one
/// server across all its ports (the template is keyed on the mark).
/// </summary>
public class FirewallMarkTests
{
    private const string MarkRules =
        "*mangle\n" +
        "-A PREROUTING -d " + Frames.Vip + "/32 -p tcp -m multiport --dports 80,443 -j MARK --set-xmark 0x1/0xffffffff\n" +
        "-A PREROUTING -d " + Frames.Vip + "/32 -p tcp -m tcp --dport 25 -j MARK --set-xmark 0x2/0xffffffff\n" +
        "COMMIT\n";

    private static EngineHarness Lab(int persistence = 300, ForwardingMethod method = ForwardingMethod.Route, ushort serverPort = 0)
    {
        VirtualServiceSpec marked = VirtualServiceSpec.ForFirewallMark(1, IpFamily.IPv4, "rr") with
        {
            PersistenceTimeout = persistence,
            RealServers = [new RealServerSpec(InetAddress.Parse(Frames.Rs1), serverPort, method), new RealServerSpec(InetAddress.Parse(Frames.Rs2), serverPort, method)],
        };
        // An address/port service on the VIP's port 80 too: the mark's service comes first.
        VirtualServiceSpec plain = new(ServiceProtocol.Tcp, InetAddress.Parse(Frames.Vip), 80, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(Frames.Rs1), 80)],
        };
        return new EngineHarness(new RuleSetSpec([plain, marked]) { MarkRules = MarkRulesFile.Parse(MarkRules, "marks") });
    }

    [Test]
    public void A_persistent_mark_service_keeps_each_client_on_one_server_for_both_ports()
    {
        EngineHarness lab = Lab();
        var serverOf = new Dictionary<string, System.Net.NetworkInformation.PhysicalAddress>();
        foreach (string client in new[] { "198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4" })
        {
            byte[] web = Frames.Tcp(client, 40000, Frames.Vip, 80, syn: true);
            Assert.That(lab.Process(web), Is.EqualTo(FrameReason.Forwarded));
            serverOf[client] = Frames.Decode(web).Ethernet.DestinationHardwareAddress;
            for (ushort port = 40001; port < 40005; port++)
            {
                byte[] secure = Frames.Tcp(client, port, Frames.Vip, 443, syn: true);
                Assert.That(lab.Process(secure), Is.EqualTo(FrameReason.Forwarded));
                Assert.That(Frames.Decode(secure).Ethernet.DestinationHardwareAddress, Is.EqualTo(serverOf[client]), $"{client} :443 follows its :80");
            }
        }
        Assert.That(serverOf.Values.Distinct().Count(), Is.EqualTo(2), "rr spreads the clients over both servers");

        Connection<uint>[] entries = lab.Engine.Connections.Snapshot().ToArray();
        Connection<uint>[] templates = [.. entries.Where(e => e.IsTemplate)];
        Assert.That(templates, Has.Length.EqualTo(4), "one template per client, for both ports");
        Assert.That(templates.All(t => t.Protocol == 0 && t.VirtualAddress == 1 && t.VirtualPort == 0 && t.ClientPort == 0),
            "<IPPROTO_IP, client, 0, mark, 0> as ip_vs_sched_persist keys it");
        Assert.That(templates.All(t => t.ControlCount == 5), "each controls its client's five connections");
        Assert.That(entries.Where(e => !e.IsTemplate).All(e => e.FirewallMark == 1 && e.DestPort == e.VirtualPort),
            "a server of port 0 takes the packet's port");
    }

    [Test]
    public void Frames_without_a_mark_service_go_to_their_address_service_or_nowhere()
    {
        EngineHarness lab = Lab(persistence: 0);
        Assert.That(lab.Process(Frames.Tcp("198.18.0.1", 40000, Frames.Vip, 8080, syn: true)), Is.EqualTo(FrameReason.NoVirtualService),
            "an unmarked port of the VIP is left alone");
        Assert.That(lab.Process(Frames.Tcp("198.18.0.1", 40001, Frames.Vip, 25, syn: true)), Is.EqualTo(FrameReason.NoVirtualService),
            "mark 2 has no service, and port 25 no address service");
        Assert.That(lab.Rules.IsVirtualAddress(Ipv4Address.Parse(Frames.Vip)), Is.True, "the rule's destination is taken like a VIP");
    }

    [Test]
    public void Nat_to_a_server_port_rewrites_every_marked_port_to_it()
    {
        EngineHarness lab = Lab(persistence: 0, method: ForwardingMethod.Masquerade, serverPort: 8080);
        foreach (ushort port in new ushort[] { 80, 443 })
        {
            byte[] frame = Frames.Tcp("198.18.0.1", (ushort)(40000 + port), Frames.Vip, port, syn: true);
            Assert.That(lab.Process(frame), Is.EqualTo(FrameReason.Forwarded));
            var tcp = Frames.Decode(frame).Ip.Extract<TcpPacket>();
            Assert.That(tcp.DestinationPort, Is.EqualTo(8080));
            Assert.That(tcp.ValidTcpChecksum, Is.True);
        }
    }

    /// <summary>
    /// Connection sync carries the mark (the v1 entry's fwmark field): a backup binds both the connection and the
    /// template to the mark's service, and the client's next SYN to the other port goes to the same server there.
    /// </summary>
    [Test]
    public void A_backup_enters_a_mark_connection_and_its_template_by_the_mark_the_master_sent()
    {
        EngineHarness master = Lab();
        master.Engine.SyncOutbox.Enabled = true;
        for (int packet = 1; packet <= 3; packet++)
        {
            master.Process(Frames.Tcp("198.18.0.1", 40000, Frames.Vip, 80, syn: packet == 1, ack: packet > 1), nowMs: packet);
        }
        var sent = new List<SyncedConnection>();
        master.Engine.SyncOutbox.Drain(sent);
        Assert.That(sent.Select(c => (c.IsTemplate, c.Protocol, c.FirewallMark)), Is.EqualTo(new[] { (false, (byte)6, 1u), (true, (byte)0, 1u) }));

        var writer = new UserspaceDr.ControlPlane.Sync.SyncMessageWriter(0);
        foreach (SyncedConnection connection in sent)
        {
            Assert.That(writer.TryAppend(UserspaceDr.ControlPlane.Sync.SyncMasterSender.ToEntry(connection)), Is.True);
        }
        var entries = new List<UserspaceDr.ControlPlane.Sync.SyncEntry>();
        UserspaceDr.ControlPlane.Sync.SyncMessageReader.Read(writer.Message, 0, entries, new long[16]);
        Assert.That(entries.Select(e => e.FirewallMark), Is.EqualTo(new[] { 1u, 1u }), "on the wire");

        EngineHarness backup = Lab();
        // Another client first, so that rr's next pick on the backup is not the master's server: only the template keeps it.
        Assert.That(backup.Process(Frames.Tcp("198.18.0.9", 40000, Frames.Vip, 80, syn: true), nowMs: 5), Is.EqualTo(FrameReason.Forwarded));
        RealServer server = master.Rules.Services.Single(s => s.FirewallMark == 1).Destinations
            .Single(d => d.Address == sent[0].DestAddress);
        foreach (UserspaceDr.ControlPlane.Sync.SyncEntry entry in entries)
        {
            Assert.That(backup.Engine.ApplySync(UserspaceDr.ControlPlane.Sync.SyncBackupReceiver.ToConnection(entry), nowMs: 10),
                Is.EqualTo(SyncApplyOutcome.Created));
        }
        byte[] secure = Frames.Tcp("198.18.0.1", 40001, Frames.Vip, 443, syn: true);
        Assert.That(backup.Process(secure, nowMs: 20), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(Frames.Decode(secure).Ethernet.DestinationHardwareAddress.ToString(),
            Is.EqualTo(server.Address == InetAddress.Parse(Frames.Rs1) ? Frames.Rs1Mac.ToString() : Frames.Rs2Mac.ToString()),
            "the synced template keeps the client on the master's server for the other port");
    }

    [Test]
    public void An_ipv6_mark_service_is_found_by_the_ipv6_rules()
    {
        FirewallMarkRules rules = MarkRulesFile.Parse(
            "# Generated by ip6tables-save v1.8.9\n*mangle\n-A PREROUTING -d " + Frames6.Vip + "/128 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n", "six");
        VirtualServiceSpec v4 = VirtualServiceSpec.ForFirewallMark(1, IpFamily.IPv4, "rr") with { RealServers = [new RealServerSpec(InetAddress.Parse(Frames.Rs1), 0)] };
        VirtualServiceSpec v6 = VirtualServiceSpec.ForFirewallMark(1, IpFamily.IPv6, "rr") with { RealServers = [new RealServerSpec(InetAddress.Parse(Frames6.Rs1), 0)] };
        RuleSet set = RuleSet.Build(new RuleSetSpec([v4, v6]) { MarkRules = rules });
        UInt128 vip = InetAddress.Parse(Frames6.Vip).IPv6;
        Assert.That(set.FindMarked(InetAddress.Parse("2001:2::1").IPv6, vip, IpProtocol.Tcp, 40000, 80)?.Address.IsIPv6, Is.True);
        Assert.That(set.FindMarked(InetAddress.Parse("2001:2::1").IPv6, vip, IpProtocol.Tcp, 40000, 81), Is.Null);
        Assert.That(set.IsVirtualAddress(InetAddress.Parse(Frames6.Vip)), Is.True);
        Assert.That(set.VirtualAddresses.ToArray(), Is.Empty, "no IPv4 rule names a destination");
    }
}
