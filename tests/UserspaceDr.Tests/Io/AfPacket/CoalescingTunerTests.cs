using UserspaceDr.Io.AfPacket;
using UserspaceDr.Io.Engine;

namespace UserspaceDr.Tests.Io.AfPacket;

/// <summary>
/// The worker's coalescing wait, tuned as net_dim tunes a NIC's moderation, driven by modelled traffic: each turn of
/// the simulated loop is one millisecond carrying the frames and the CPU time the model gives for the wait now chosen.
/// </summary>
public class CoalescingTunerTests
{
    private const int Max = 100;

    /// <summary>Frames per millisecond and CPU nanoseconds per frame the traffic gives at a wait of W µs.</summary>
    private delegate (double FramesPerMs, double CpuPerFrame) Traffic(int waitMicroseconds);

    // Senders that do not wait for answers: the rate stays, each longer wait makes fuller turns and cheaper frames
    // (the shape the worker measured at 50,000 frames/s: about 9,800, 7,800, 6,000 and 4,300 ns at 0, 25, 50, 100 µs).
    private static readonly Traffic OpenLoopStream = w => (50, 10000 / (1 + (w / 60.0)));

    // Clients that wait for each answer: every microsecond of wait on the path is a microsecond less of requests.
    private static readonly Traffic RequestResponse = w => (80 / (1 + (w / 40.0)), 6000);

    private static readonly Traffic Quiet = _ => (20, 10000);

    private sealed class Simulation(CoalescingTuner tuner)
    {
        private long _milliseconds = 1000;
        private long _cpu;
        private double _carry;

        public long Clock() => _milliseconds * 10_000; // ticks of 100 ns

        public long Cpu() => _cpu;

        /// <summary>Runs the traffic for the given time; returns the milliseconds spent at a non-zero wait.</summary>
        public int Run(Traffic traffic, int milliseconds)
        {
            int waiting = 0;
            for (int i = 0; i < milliseconds; i++)
            {
                (double framesPerMs, double cpuPerFrame) = traffic(tuner.WaitMicroseconds);
                _carry += framesPerMs;
                int frames = (int)_carry;
                _carry -= frames;
                _cpu += (long)(frames * cpuPerFrame);
                _milliseconds++;
                _ = tuner.AfterTurn(frames, _milliseconds);
                waiting += tuner.WaitMicroseconds > 0 ? 1 : 0;
            }
            return waiting;
        }
    }

    private static (CoalescingTuner Tuner, Simulation Simulation) Make(int max = Max)
    {
        Simulation? simulation = null;
        var tuner = new CoalescingTuner(max, () => simulation!.Clock(), 10_000_000, () => simulation!.Cpu());
        simulation = new Simulation(tuner);
        return (tuner, simulation);
    }

    [Test]
    public void A_stream_whose_frames_get_cheaper_with_each_wait_climbs_to_the_longest_and_stays()
    {
        (CoalescingTuner tuner, Simulation simulation) = Make();
        simulation.Run(OpenLoopStream, 1000);
        Assert.That(tuner.WaitMicroseconds, Is.EqualTo(Max));
        int waiting = simulation.Run(OpenLoopStream, 2000);
        Assert.Multiple(() =>
        {
            Assert.That(tuner.WaitMicroseconds, Is.EqualTo(Max));
            Assert.That(waiting, Is.EqualTo(2000), "parked on top: a stream that does not change moves nothing");
        });
    }

    [Test]
    public void Clients_that_wait_for_their_answers_keep_the_worker_from_waiting()
    {
        (CoalescingTuner tuner, Simulation simulation) = Make();
        simulation.Run(RequestResponse, 1000);
        int waiting = simulation.Run(RequestResponse, 5000);
        Assert.Multiple(() =>
        {
            Assert.That(tuner.WaitMicroseconds, Is.Zero);
            Assert.That(waiting, Is.LessThan(250), "a probe of the next level now and then at most (5%)");
        });
    }

    [Test]
    public void A_quiet_worker_never_waits_and_a_busy_one_that_quiets_starts_again_from_none()
    {
        (CoalescingTuner tuner, Simulation simulation) = Make();
        Assert.That(simulation.Run(Quiet, 2000), Is.Zero);
        simulation.Run(OpenLoopStream, 1000);
        Assert.That(tuner.WaitMicroseconds, Is.EqualTo(Max));
        simulation.Run(Quiet, 2 * CoalescingTuner.MeasurementMilliseconds);
        Assert.That(tuner.WaitMicroseconds, Is.Zero);
    }

    [Test]
    public void When_the_stream_turns_into_waiting_clients_the_tuner_leaves_the_top()
    {
        (CoalescingTuner tuner, Simulation simulation) = Make();
        simulation.Run(OpenLoopStream, 1000);
        Assert.That(tuner.WaitMicroseconds, Is.EqualTo(Max));
        simulation.Run(RequestResponse, 2000);
        Assert.That(tuner.WaitMicroseconds, Is.Zero);
    }

    [Test]
    public void Only_a_turn_of_few_frames_is_followed_by_the_wait_and_zero_turns_coalescing_off()
    {
        (CoalescingTuner tuner, Simulation simulation) = Make();
        simulation.Run(OpenLoopStream, 1000);
        (CoalescingTuner off, Simulation offSimulation) = Make(max: 0);
        offSimulation.Run(OpenLoopStream, 1000);
        Assert.Multiple(() =>
        {
            Assert.That(tuner.AfterTurn(CoalescingTuner.SmallTurnFrames - 1, 2000), Is.EqualTo(Max));
            Assert.That(tuner.AfterTurn(CoalescingTuner.SmallTurnFrames, 2000), Is.Zero, "a full turn goes straight on");
            Assert.That(tuner.AfterTurn(0, 2000), Is.Zero, "an empty ring is polled, not slept on");
            Assert.That(off.Enabled, Is.False);
            Assert.That(off.AfterTurn(1, 2000), Is.Zero);
            Assert.That(off.WaitMicroseconds, Is.Zero);
        });
    }
}
