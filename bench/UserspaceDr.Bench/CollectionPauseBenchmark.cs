using BenchmarkDotNet.Attributes;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Bench;

/// <summary>
/// What a full garbage collection costs while a worker's connection table (the default capacity, 1,048,576) holds a
/// million connections, each bound to a server. The collector stops every thread for it, the workers included, so this
/// is the stall their rings must absorb whenever the control plane's own allocations trigger one. A table the collector
/// has to scan pays for its size here; one outside the collected heap does not.
/// </summary>
[MemoryDiagnoser]
public class CollectionPauseBenchmark
{
    private const int Connections = 1_000_000;
    private ConnectionTable<uint> _table = null!;

    [GlobalSetup]
    public void Setup()
    {
        _table = new ConnectionTable<uint>(1 << 20);
        var server = new RealServer(InetAddress.Parse("198.18.0.11"), 80, ForwardingMethod.Route, 1);
        for (int i = 0; i < Connections; i++)
        {
            int slot = _table.TryInsert(BenchEnvironment.Key(i));
            _table.At(slot).Dest = server;
        }
    }

    [Benchmark]
    public void FullCollection()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true);
        GC.KeepAlive(_table);
    }
}
