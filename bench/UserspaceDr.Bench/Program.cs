using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

namespace UserspaceDr.Bench;

/// <summary>
/// Entry point: <c>./build.sh bench -- --filter '*Established*' --job short</c> (arguments go to BenchmarkSwitcher).
/// The config always reports allocations (MemoryDiagnoser) and the median next to the mean.
/// <c>--thread-cpu-clock</c> (ours, removed before BenchmarkDotNet parses the rest) times iterations with the
/// thread's CPU time instead of wall time (see <see cref="ThreadCpuClock"/>); other options such as
/// <c>--job short</c> still apply on top of it.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        // `./build.sh bench -- ARGS` reaches us as ["--", ARGS...] (build.sh adds its own `--` for dotnet run);
        // BenchmarkDotNet would read everything after a `--` as positional, so drop a leading one.
        if (args.Length > 0 && args[0] == "--")
        {
            args = args[1..];
        }
        bool threadCpuClock = args.Contains("--thread-cpu-clock");
        args = [.. args.Where(a => a != "--thread-cpu-clock")];
        ManualConfig config = DefaultConfig.Instance
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddColumn(StatisticColumn.Median, StatisticColumn.P95)
            .WithOptions(ConfigOptions.JoinSummary);
        if (threadCpuClock)
        {
            // A default job: command-line job options (--job, --iterationCount, ...) are applied on top of it.
            config = config.AddJob(Job.Default.WithClock(new ThreadCpuClock()).AsDefault());
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        return 0;
    }
}
