using UserspaceDr.ControlPlane.Sync;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Tests.Forwarding;

namespace UserspaceDr.Tests.Connections;

/// <summary>
/// An IPv6 connection synced as IPVS syncs it: the master's engine posts it, it goes out as a 72-byte version-1 entry of
/// type 1, and a backup's engine enters it in its IPv6 table, so that the next packet goes to the same server.
/// </summary>
public class Ipv6SyncTests
{
    private static EngineHarness Engine()
    {
        var service = new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse(Frames6.Vip), 80, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(Frames6.Rs1), 80), new RealServerSpec(InetAddress.Parse(Frames6.Rs2), 80)],
        };
        var lab = new EngineHarness(new RuleSetSpec([service]));
        lab.Neighbors = new NeighborTable(lab.Neighbors.Hops, new Dictionary<UInt128, NextHop>
        {
            [Frames6.V6(Frames6.Rs1)] = new NextHop(Frames.UdrMac(Frames.Rs1Mac)),
            [Frames6.V6(Frames6.Rs2)] = new NextHop(Frames.UdrMac(Frames.Rs2Mac)),
        });
        return lab;
    }

    [Test]
    public void A_master_syncs_an_ipv6_connection_on_the_wire_and_the_backup_forwards_it_to_the_same_server()
    {
        EngineHarness master = Engine();
        master.Engine.SyncOutbox.Enabled = true;
        // Three packets: IPVS syncs a TCP connection on its third (sync_threshold 3).
        master.Process(Frames6.Tcp(40000), nowMs: 0);
        master.Process(Frames6.Tcp(40001), nowMs: 0); // rr: the next connection takes the other server
        for (int i = 1; i <= 2; i++)
        {
            master.Process(Frames6.Tcp(40001, syn: false, ack: true), nowMs: i);
        }
        var posted = new List<SyncedConnection>();
        master.Engine.SyncOutbox.Drain(posted);
        SyncedConnection connection = posted.Single();
        Assert.That(connection.ClientAddress, Is.EqualTo(InetAddress.Parse(Frames6.Client)));

        var writer = new SyncMessageWriter(9);
        Assert.That(writer.TryAppend(SyncMasterSender.ToEntry(connection)), Is.True);
        Assert.That(writer.Message.Length, Is.EqualTo(SyncMessageWriter.HeaderLength + SyncMessageWriter.Ipv6EntryLength));
        var entries = new List<SyncEntry>();
        SyncMessageReader.Read(writer.Message, 9, entries, new long[16]);
        SyncedConnection received = SyncBackupReceiver.ToConnection(entries.Single());

        EngineHarness backup = Engine();
        Assert.That(backup.Engine.ApplySync(received, nowMs: 10), Is.EqualTo(SyncApplyOutcome.Created));
        Connection<UInt128> entry = backup.Engine.Ipv6Connections!.Snapshot().Single();
        Assert.That(AddressBits.ToInet(entry.DestAddress), Is.EqualTo(connection.DestAddress));
        // The next packet of the flow, without a SYN, goes where the master sent it.
        byte[] next = Frames6.Tcp(40001, syn: false, ack: true);
        Assert.That(backup.Process(next, nowMs: 20), Is.EqualTo(FrameReason.Forwarded));
        MacAddress expected = connection.DestAddress == InetAddress.Parse(Frames6.Rs1) ? Frames.UdrMac(Frames.Rs1Mac) : Frames.UdrMac(Frames.Rs2Mac);
        Assert.That(MacAddress.Read(next), Is.EqualTo(expected));
    }
}
