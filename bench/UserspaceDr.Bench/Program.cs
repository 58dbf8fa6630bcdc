using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Running;

namespace UserspaceDr.Bench;

/// <summary>
/// Entry point: <c>./build.sh bench -- --filter '*Established*' --job short</c> (arguments go to BenchmarkSwitcher).
/// The config always reports allocations (MemoryDiagnoser) and the median next to the mean.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        IConfig config = DefaultConfig.Instance
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddColumn(StatisticColumn.Median, StatisticColumn.P95)
            .WithOptions(ConfigOptions.JoinSummary);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        return 0;
    }
}
