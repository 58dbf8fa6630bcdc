using UserspaceDr.ControlPlane.Health;
using UserspaceDr.ControlPlane.Keepalived;

namespace UserspaceDr.Tests.ControlPlane;

public class CheckerStateTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 6, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan DelayLoop = TimeSpan.FromSeconds(6);
    private static readonly TimeSpan DelayBeforeRetry = TimeSpan.FromSeconds(2);

    private static TcpCheckConfig Checker(int retry, bool alpha = false) => new(new ConfigPlace("k.conf", 1))
    {
        ConnectAddress = System.Net.IPAddress.Parse("198.18.1.11"),
        ConnectPort = 80,
        Retry = retry,
        DelayBeforeRetry = DelayBeforeRetry,
        DelayLoop = DelayLoop,
        Warmup = TimeSpan.Zero,
        Alpha = alpha,
    };

    private static readonly ProbeResult Pass = ProbeResult.Passed("connected");
    private static readonly ProbeResult Fail = ProbeResult.Failed("connect timeout after 5 s");

    [Test]
    public void While_up_a_failure_is_retried_retry_times_before_the_checker_goes_down()
    {
        var state = new CheckerState(Checker(retry: 2), Start);
        Assert.That(state.Record(Pass, Start), Is.EqualTo((false, DelayLoop)));
        Assert.That(state.Record(Fail, Start.AddSeconds(6)), Is.EqualTo((false, DelayBeforeRetry)), "first failure: retry");
        Assert.That(state.Record(Fail, Start.AddSeconds(8)), Is.EqualTo((false, DelayBeforeRetry)), "second failure: retry");
        Assert.That(state.Up, Is.True);
        Assert.That(state.Record(Fail, Start.AddSeconds(10)), Is.EqualTo((true, DelayLoop)), "third failure: down");
        Assert.That((state.Up, state.ConsecutiveFailures, state.Since, state.LastResult),
            Is.EqualTo((false, 3, Start.AddSeconds(10), "connect timeout after 5 s")));
        Assert.That(state.Record(Fail, Start.AddSeconds(16)), Is.EqualTo((false, DelayLoop)), "a failed server is polled every delay_loop");
        Assert.That(state.Record(Pass, Start.AddSeconds(22)), Is.EqualTo((true, DelayLoop)), "one success brings it back");
        Assert.That((state.Up, state.ConsecutiveFailures), Is.EqualTo((true, 0)));
    }

    [Test]
    public void A_success_between_failures_resets_the_retries()
    {
        var state = new CheckerState(Checker(retry: 1), Start);
        state.Record(Pass, Start);
        Assert.That(state.Record(Fail, Start).Changed, Is.False);
        state.Record(Pass, Start);
        Assert.That(state.Record(Fail, Start).Changed, Is.False, "the retry is available again");
        Assert.That(state.Record(Fail, Start).Changed, Is.True);
    }

    [Test]
    public void Before_its_first_check_a_failure_counts_at_once()
    {
        var state = new CheckerState(Checker(retry: 3), Start);
        Assert.That(state.Record(Fail, Start), Is.EqualTo((true, DelayLoop)));
        Assert.That(state.Up, Is.False);
    }

    [Test]
    public void Alpha_starts_down_and_one_success_brings_it_up()
    {
        var state = new CheckerState(Checker(retry: 1, alpha: true), Start);
        Assert.That(state.Up, Is.False);
        Assert.That(state.Record(Fail, Start), Is.EqualTo((false, DelayLoop)));
        Assert.That(state.Record(Pass, Start), Is.EqualTo((true, DelayLoop)));
    }

    [Test]
    public void A_dynamic_weight_stays_until_the_next_one()
    {
        var state = new CheckerState(Checker(retry: 0), Start);
        state.Record(ProbeResult.Passed("exit 7", 5), Start);
        state.Record(ProbeResult.Passed("exit 0"), Start);
        Assert.That(state.Weight, Is.EqualTo(5));
    }
}
