using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Tests.Forwarding;

namespace UserspaceDr.Tests.Connections;

/// <summary>A backup applying what a master synced (ip_vs_proc_conn), then forwarding those connections as the master did.</summary>
public class ConnectionSyncTests
{
    private static EngineHarness TwoServers(string scheduler = "rr") =>
        new(EngineHarness.Service(scheduler, servers: [(Frames.Rs1, 1), (Frames.Rs2, 1)]));

    private static SyncedConnection Synced(ushort clientPort, string server, TcpState state = TcpState.Established, bool inactive = false, uint timeout = 900) =>
        new(IpProtocol.Tcp, false, inactive, (ushort)state, InetAddress.Parse(Frames.Client), clientPort, InetAddress.Parse(Frames.Vip), 80,
            InetAddress.Parse(server), 80, timeout);

    [Test]
    public void A_synced_connection_is_entered_on_its_server_and_its_next_packet_goes_there_without_a_SYN()
    {
        var lab = TwoServers();
        Assert.That(lab.Engine.ApplySync(Synced(40000, Frames.Rs1), nowMs: 1000), Is.EqualTo(SyncApplyOutcome.Created));
        Assert.That(lab.Engine.ApplySync(Synced(40001, Frames.Rs2, TcpState.FinWait, inactive: true, timeout: 100), nowMs: 1000), Is.EqualTo(SyncApplyOutcome.Created));
        Assert.That((lab.Server(Frames.Rs1).ActiveConnections, lab.Server(Frames.Rs2).InactiveConnections), Is.EqualTo((1, 1)));
        Connection<uint> rs2Entry = lab.Engine.Connections.Snapshot().Single(c => c.ClientPort == 40001);
        Assert.That((rs2Entry.State, rs2Entry.ExpiresAtMs), Is.EqualTo((TcpState.FinWait, 1000 + 100_000L)), "state and timeout as sent");

        // Mid-flow packets, no SYN: forwarded to the synced server (rr would have picked rs2 first).
        byte[] ack = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true, payload: [1, 2, 3]);
        Assert.That(lab.Process(ack, nowMs: 2000), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(Frames.Decode(ack).Ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac));
    }

    [Test]
    public void An_update_moves_the_active_count_and_a_connection_on_another_server_is_replaced()
    {
        var lab = TwoServers();
        lab.Engine.ApplySync(Synced(40000, Frames.Rs1, TcpState.SynRecv, inactive: true), nowMs: 0);
        Assert.That((lab.Server(Frames.Rs1).ActiveConnections, lab.Server(Frames.Rs1).InactiveConnections), Is.EqualTo((0, 1)));
        Assert.That(lab.Engine.ApplySync(Synced(40000, Frames.Rs1), nowMs: 10), Is.EqualTo(SyncApplyOutcome.Updated));
        Assert.That((lab.Server(Frames.Rs1).ActiveConnections, lab.Server(Frames.Rs1).InactiveConnections), Is.EqualTo((1, 0)));

        // The same client port now on rs2 (the old connection ended, a new one was scheduled there).
        Assert.That(lab.Engine.ApplySync(Synced(40000, Frames.Rs2), nowMs: 20), Is.EqualTo(SyncApplyOutcome.Replaced));
        Assert.That((lab.Server(Frames.Rs1).ActiveConnections, lab.Server(Frames.Rs2).ActiveConnections), Is.EqualTo((0, 1)));
        // A late inactive message about the old one is stale.
        Assert.That(lab.Engine.ApplySync(Synced(40000, Frames.Rs1, TcpState.TimeWait, inactive: true), nowMs: 30), Is.EqualTo(SyncApplyOutcome.Stale));
        Assert.That(lab.Engine.Connections.Snapshot().Single().DestAddress, Is.EqualTo(Ipv4Address.Parse(Frames.Rs2)));
    }

    [Test]
    public void Unknown_services_servers_and_states_are_skipped_with_their_reason()
    {
        var lab = TwoServers();
        Assert.That(lab.Engine.ApplySync(Synced(1, Frames.Rs1) with { VirtualPort = 8080 }, 0), Is.EqualTo(SyncApplyOutcome.UnknownService));
        Assert.That(lab.Engine.ApplySync(Synced(1, "198.18.0.99"), 0), Is.EqualTo(SyncApplyOutcome.UnknownServer));
        Assert.That(lab.Engine.ApplySync(Synced(1, Frames.Rs1) with { State = 11 }, 0), Is.EqualTo(SyncApplyOutcome.InvalidState));
        Assert.That(lab.Engine.Connections.Count, Is.Zero);
    }

    [Test]
    public void Synced_active_counts_make_lc_pick_as_the_master_would()
    {
        var lab = TwoServers("lc");
        for (ushort port = 1; port <= 3; port++)
        {
            lab.Engine.ApplySync(Synced(port, Frames.Rs2), nowMs: 0);
        }
        lab.Engine.ApplySync(Synced(4, Frames.Rs1), nowMs: 0);
        byte[] syn = Frames.Tcp(Frames.Client, 50000, Frames.Vip, 80, syn: true);
        Assert.That(lab.Process(syn, nowMs: 10), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(Frames.Decode(syn).Ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac), "rs1 has 1 active, rs2 3");
    }

    [Test]
    public void A_synced_template_keeps_a_persistent_client_on_its_server()
    {
        var lab = new EngineHarness(EngineHarness.Service("rr", persistence: 300, servers: [(Frames.Rs1, 1), (Frames.Rs2, 1)]));
        var template = new SyncedConnection(IpProtocol.Tcp, true, false, 0, InetAddress.Parse(Frames.Client), 0, InetAddress.Parse(Frames.Vip), 80,
            InetAddress.Parse(Frames.Rs1), 80, 300);
        Assert.That(lab.Engine.ApplySync(template, nowMs: 0), Is.EqualTo(SyncApplyOutcome.Created));
        Assert.That(lab.Server(Frames.Rs1).PersistentConnections, Is.EqualTo(1));
        for (ushort port = 40000; port < 40004; port++)
        {
            byte[] syn = Frames.Tcp(Frames.Client, port, Frames.Vip, 80, syn: true);
            Assert.That(lab.Process(syn, nowMs: 10), Is.EqualTo(FrameReason.Forwarded));
            Assert.That(Frames.Decode(syn).Ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac), "the template's server, not rr's");
        }
    }
}

/// <summary>A master deciding when to sync a connection (ip_vs_sync_conn_needed, sync_threshold 3 50).</summary>
public class SyncMasterTests
{
    private static List<SyncedConnection> Drain(EngineHarness lab)
    {
        var sent = new List<SyncedConnection>();
        lab.Engine.SyncOutbox.Drain(sent);
        return sent;
    }

    [Test]
    public void Tcp_is_synced_on_the_3rd_packet_every_50th_after_and_at_once_on_leaving_established()
    {
        var lab = new EngineHarness(EngineHarness.Service("rr", servers: [(Frames.Rs1, 1)]));
        lab.Engine.SyncOutbox.Enabled = true;
        var syncedAt = new List<int>();
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true), nowMs: 0);
        for (int packet = 2; packet <= 110; packet++)
        {
            lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true), nowMs: packet);
            if (Drain(lab).Count > 0)
            {
                syncedAt.Add(packet);
            }
        }
        Assert.That(syncedAt, Is.EqualTo(new[] { 3, 53, 103 }));
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, fin: true, ack: true), nowMs: 200);
        SyncedConnection fin = Drain(lab).Single();
        Assert.That(((TcpState)fin.State, fin.IsInactive, fin.TimeoutSeconds, fin.Method, fin.DestAddress),
            Is.EqualTo((TcpState.FinWait, true, 120u, ForwardingMethod.Route, InetAddress.Parse(Frames.Rs1))));
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true), nowMs: 201);
        Assert.That(Drain(lab), Is.Empty, "the same state again is not forced");
    }

    [Test]
    public void A_persistent_connection_is_synced_with_its_template_and_nothing_is_synced_when_not_master()
    {
        var lab = new EngineHarness(EngineHarness.Service("rr", persistence: 300, servers: [(Frames.Rs1, 1)]));
        lab.Engine.SyncOutbox.Enabled = true;
        for (int packet = 1; packet <= 3; packet++)
        {
            lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: packet == 1, ack: packet > 1), nowMs: packet);
        }
        List<SyncedConnection> sent = Drain(lab);
        Assert.That(sent.Select(s => s.IsTemplate), Is.EqualTo(new[] { false, true }), "the connection, then its template");
        Assert.That((sent[1].ClientPort, sent[1].TimeoutSeconds), Is.EqualTo(((ushort)0, 300u)));

        lab.Engine.SyncOutbox.Enabled = false;
        for (int packet = 4; packet <= 60; packet++)
        {
            lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true), nowMs: packet);
        }
        Assert.That(Drain(lab), Is.Empty);
    }

    [Test]
    public void A_full_outbox_counts_overflows_and_never_blocks()
    {
        var outbox = new SyncOutbox();
        for (int i = 0; i < SyncOutbox.Capacity + 5; i++)
        {
            outbox.Post(new SyncedConnection(6, false, false, 1, InetAddress.FromIPv4(1), (ushort)i, InetAddress.FromIPv4(2), 80, InetAddress.FromIPv4(3), 80, 900));
        }
        var drained = new List<SyncedConnection>();
        Assert.That((outbox.Drain(drained), outbox.Overflows), Is.EqualTo((SyncOutbox.Capacity, 5L)));
        Assert.That(drained[^1].ClientPort, Is.EqualTo((ushort)(SyncOutbox.Capacity - 1)));
    }
}
