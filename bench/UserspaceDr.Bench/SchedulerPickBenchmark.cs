using System.Collections.Immutable;
using BenchmarkDotNet.Attributes;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Bench;

/// <summary>
/// <see cref="Scheduler.Pick"/> for each of the ten IPVS schedulers × 10/100/1000 real servers, with 1024 different
/// client keys per invocation (ns per pick). Servers have weights 1..4 and a spread of active/inactive connection
/// counts (so lc/wlc/sed/nq/ovf/fo have something to compare); every server stays available.
/// <para>
/// All ten names are parameters and nothing is skipped: a name SchedulerFactory does not know fails in setup. Until
/// the other nine are merged, run only rr (the filter is in bench/README.md); afterwards they run unchanged.
/// </para>
/// </summary>
[MemoryDiagnoser]
public class SchedulerPickBenchmark
{
    public const int KeysPerInvoke = 1024;

    private Scheduler _scheduler = null!;
    private SchedulingKey[] _keys = null!;

    [Params("rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "sh", "mh")]
    public string Scheduler { get; set; } = "rr";

    [Params(10, 100, 1000)]
    public int Servers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var dests = ImmutableArray.CreateBuilder<RealServer>(Servers);
        for (int i = 0; i < Servers; i++)
        {
            var dest = new RealServer(InetAddress.FromIPv4(BenchEnvironment.ServerAddress(i)), BenchEnvironment.VirtualPort, ForwardingMethod.Route, weight: 1 + (i % 4));
            // A deterministic spread of load: active 0..6, inactive 0..12 (below every threshold: none is set).
            for (int a = 0; a < i % 7; a++)
            {
                dest.BindConnection(active: true, template: false);
            }
            for (int n = 0; n < (i * 5) % 13; n++)
            {
                dest.BindConnection(active: false, template: false);
            }
            dests.Add(dest);
        }
        _scheduler = SchedulerFactory.Create(Scheduler, dests.MoveToImmutable(), SchedulerFlags.None);

        _keys = new SchedulingKey[KeysPerInvoke];
        for (int i = 0; i < KeysPerInvoke; i++)
        {
            int flow = i * 977;
            _keys[i] = new SchedulingKey(BenchEnvironment.ClientAddress(flow), BenchEnvironment.ClientPort(flow),
                BenchEnvironment.Vip, BenchEnvironment.VirtualPort);
        }
        if (_scheduler.Pick(_keys[0]) is null)
        {
            throw new InvalidOperationException($"Setup: {Scheduler} picked no server.");
        }
    }

    [Benchmark(OperationsPerInvoke = KeysPerInvoke)]
    public int Pick()
    {
        Scheduler scheduler = _scheduler;
        SchedulingKey[] keys = _keys;
        int picked = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            picked += scheduler.Pick(keys[i]) is null ? 0 : 1;
        }
        return picked;
    }
}
