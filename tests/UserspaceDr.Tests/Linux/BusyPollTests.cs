using UserspaceDr.Linux.Host;

namespace UserspaceDr.Tests.Linux;

/// <summary>A receive loop's busy polling: it spins only inside the window after its last frames, and stops at a frame.</summary>
public class BusyPollTests
{
    [Test]
    public void Off_it_never_spins_and_never_asks_the_rings()
    {
        var poll = new BusyPoll(0);
        poll.FramesSeen();
        int asked = 0;
        Assert.Multiple(() =>
        {
            Assert.That(poll.Enabled, Is.False);
            Assert.That(poll.SpinForFrames(0, _ => ++asked > 0), Is.False);
            Assert.That(asked, Is.Zero);
        });
    }

    [Test]
    public void Inside_the_window_it_spins_until_the_rings_have_frames()
    {
        var poll = new BusyPoll(200_000); // windows far longer than a worker's, so that the test's first call (its JIT) falls inside
        poll.FramesSeen();
        int asked = 0;
        Assert.Multiple(() =>
        {
            Assert.That(poll.SpinForFrames(0, _ => ++asked == 3), Is.True, "the third look finds frames");
            Assert.That(asked, Is.EqualTo(3));
            Assert.That((poll.Hits, poll.Misses), Is.EqualTo((1L, 0L)));
        });
    }

    [Test]
    public void With_no_frames_it_gives_up_at_the_end_of_the_window_and_the_worker_sleeps()
    {
        var poll = new BusyPoll(100_000);
        poll.FramesSeen();
        int asked = 0;
        Assert.Multiple(() =>
        {
            Assert.That(poll.SpinForFrames(0, _ => { asked++; return false; }), Is.False);
            Assert.That(asked, Is.Positive, "it looked while the window was open");
            Assert.That((poll.Hits, poll.Misses), Is.EqualTo((0L, 1L)));
            Assert.That(poll.SpinForFrames(0, _ => true), Is.False, "past the window it does not spin again until new frames");
        });
    }

    [Test]
    public void A_worker_that_has_seen_no_frames_does_not_spin() =>
        Assert.That(new BusyPoll(200_000).SpinForFrames(0, _ => true), Is.False);

    [Test]
    public void A_negative_window_is_refused() =>
        Assert.That(() => new BusyPoll(-1), Throws.TypeOf<ArgumentOutOfRangeException>());
}
