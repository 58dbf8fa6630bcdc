namespace UserspaceDr.Io.Engine;

/// <summary>
/// How long a busy AF_PACKET worker waits after a turn of few frames, chosen the way Linux's dynamic interrupt
/// moderation chooses a NIC's (lib/dim/net_dim.c, `net_dim`): a ladder of five waits from none to the configured most,
/// each measured for <see cref="MeasurementMilliseconds"/> and stepped by net_dim's rules.
/// </summary>
/// <remarks>
/// Why adaptive: a TPACKET_V2 ring hands over each frame as soon as it is written, so at tens of thousands of frames
/// per second a turn of the loop finds a frame or three and pays a poll (a sleep and a wake-up, the largest cost per
/// frame on this project's machines: bench/README.md) and a sendmmsg for them. Waiting some microseconds lets the next
/// turn find a fuller run. That is free for a stream whose senders do not wait for answers (the frame rate stays, the
/// CPU per frame falls) and costly for clients that each wait for their answer before the next request (a connection
/// rate through NAT: every handshake crosses the worker twice, and the rate falls). Like net_dim, the tuner tells the
/// two apart by what each step does: a step that raises the frame rate, or keeps it and lowers the CPU per frame, is
/// better and the tuner goes on in that direction; one that costs frame rate is worse and it turns back. Where a step
/// changes neither by more than 10% the tuner parks, and it leaves the park when the traffic changes. A worker below
/// <see cref="BusyFramesPerMillisecond"/> never waits, and the tuner starts again from no wait.
/// net_dim compares bytes, packets, then interrupts per millisecond, because a NIC cannot see what its interrupts
/// cost; a worker can read its own CPU time, which is what the waits are for, so this tuner compares frames per
/// millisecond, then CPU per frame.
/// </remarks>
public sealed class CoalescingTuner
{
    /// <summary>How long each level is measured: at 40,000 frames/s, 2,000 frames (net_dim counts 64 interrupts).</summary>
    public const int MeasurementMilliseconds = 50;

    /// <summary>Below 40,000 frames/s a worker never waits: a lone request's round trip is not lengthened.</summary>
    public const int BusyFramesPerMillisecond = 40;

    /// <summary>A turn with fewer frames than this is followed by the wait; a fuller one goes straight on.</summary>
    public const int SmallTurnFrames = 32;

    private const int Levels = 5;
    private const int SignificantPercent = 10;

    /// <summary>
    /// Parked this many measurements (2 s), the tuner tries the next level again. net_dim leaves its park only when the
    /// traffic changes; a park at no wait reached through a noisy measurement would then last for as long as the
    /// traffic does. The probe costs waiting clients one measurement in forty.
    /// </summary>
    private const int ReprobeMeasurements = 40;

    private enum TuneState { GoingRight, GoingLeft, ParkedOnTop, ParkedTired }

    private enum Comparison { Same, Better, Worse }

    private readonly int[] _waitMicroseconds;
    private readonly long _ticksPerMillisecond;
    private readonly Func<long> _clock;
    private readonly Func<long> _cpuNanoseconds;
    private TuneState _state = TuneState.GoingRight;
    private int _level;
    private int _stepsRight;
    private int _stepsLeft;
    private int _tired;
    private int _parked;
    private double _previousFramesPerMs;
    private double _previousCpuPerFrame;
    private long _start;
    private long _startCpu;
    private long _startMilliseconds;
    private long _frames;

    /// <param name="maxMicroseconds">The longest wait (--coalesce-usecs); 0 turns coalescing off.</param>
    /// <param name="clock">The fine clock, read only when a measurement ends (Stopwatch.GetTimestamp).</param>
    /// <param name="ticksPerSecond">Its frequency (Stopwatch.Frequency).</param>
    /// <param name="cpuNanoseconds">The worker thread's CPU time, read only when a measurement ends.</param>
    public CoalescingTuner(int maxMicroseconds, Func<long> clock, long ticksPerSecond, Func<long> cpuNanoseconds)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxMicroseconds);
        ArgumentNullException.ThrowIfNull(clock);
        ArgumentNullException.ThrowIfNull(cpuNanoseconds);
        ArgumentOutOfRangeException.ThrowIfLessThan(ticksPerSecond, 1000);
        _clock = clock;
        _cpuNanoseconds = cpuNanoseconds;
        // Five levels, as net_dim's ladder has, in even steps: measured with fixed waits (bench/README.md), a wait
        // below a quarter of 100 µs saves nothing measurable, so a finer first step would park the tuner at none.
        _waitMicroseconds = [0, maxMicroseconds / 4, maxMicroseconds / 2, maxMicroseconds * 3 / 4, maxMicroseconds];
        _ticksPerMillisecond = ticksPerSecond / 1000;
        Enabled = maxMicroseconds > 0;
    }

    public bool Enabled { get; }

    /// <summary>The wait now chosen, in microseconds (0 while the worker is not busy).</summary>
    public int WaitMicroseconds => _waitMicroseconds[_level];

    /// <summary>
    /// Accounts one turn of the worker's loop and says how long to wait before the next (0: go on, or poll when
    /// <paramref name="frames"/> is 0). <paramref name="milliseconds"/> is the coarse clock the loop reads every turn.
    /// </summary>
    public int AfterTurn(int frames, long milliseconds)
    {
        if (!Enabled)
        {
            return 0;
        }
        _frames += frames;
        if (milliseconds - _startMilliseconds >= MeasurementMilliseconds)
        {
            EndMeasurement(_clock(), _cpuNanoseconds(), milliseconds);
        }
        return frames is > 0 and < SmallTurnFrames ? _waitMicroseconds[_level] : 0;
    }

    /// <summary>Closes the measurement at <paramref name="now"/> (fine clock) and decides the next level.</summary>
    private void EndMeasurement(long now, long cpuNanoseconds, long milliseconds)
    {
        double elapsedMs = (double)(now - _start) / _ticksPerMillisecond;
        if (_start != 0 && elapsedMs > 0)
        {
            double framesPerMs = _frames / elapsedMs;
            if (framesPerMs < BusyFramesPerMillisecond)
            {
                Reset();
            }
            else
            {
                Decide(framesPerMs, (double)(cpuNanoseconds - _startCpu) / _frames);
            }
        }
        _start = now;
        _startCpu = cpuNanoseconds;
        _startMilliseconds = milliseconds;
        _frames = 0;
    }

    private void Reset()
    {
        _state = TuneState.GoingRight;
        _level = 0;
        _stepsRight = _stepsLeft = _tired = _parked = 0;
        _previousFramesPerMs = _previousCpuPerFrame = 0;
    }

    // net_dim_decision: the stats of the profile just measured against those of the one before.
    private void Decide(double framesPerMs, double cpuPerFrame)
    {
        TuneState before = _state;
        switch (_state)
        {
            case TuneState.ParkedOnTop:
                if (Compare(framesPerMs, cpuPerFrame) != Comparison.Same || ++_parked == ReprobeMeasurements)
                {
                    ExitParking();
                }
                break;
            case TuneState.ParkedTired:
                if (--_tired == 0)
                {
                    ExitParking();
                }
                break;
            default:
                if (Compare(framesPerMs, cpuPerFrame) != Comparison.Better)
                {
                    Turn();
                }
                if (OnTop())
                {
                    ParkOnTop();
                    break;
                }
                switch (Step())
                {
                    case StepResult.OnEdge:
                        ParkOnTop();
                        break;
                    case StepResult.TooTired:
                        _tired = Levels;
                        _state = TuneState.ParkedTired;
                        break;
                }
                break;
        }
        // Parked on top, the reference stays the stats of the level it parked on, so that a drift is noticed.
        if (before != TuneState.ParkedOnTop || _state != TuneState.ParkedOnTop)
        {
            _previousFramesPerMs = framesPerMs;
            _previousCpuPerFrame = cpuPerFrame;
        }
    }

    private Comparison Compare(double framesPerMs, double cpuPerFrame)
    {
        if (_previousFramesPerMs == 0)
        {
            return framesPerMs > 0 ? Comparison.Better : Comparison.Same;
        }
        if (Significant(framesPerMs, _previousFramesPerMs))
        {
            return framesPerMs > _previousFramesPerMs ? Comparison.Better : Comparison.Worse;
        }
        if (_previousCpuPerFrame == 0)
        {
            return Comparison.Same;
        }
        if (Significant(cpuPerFrame, _previousCpuPerFrame))
        {
            return cpuPerFrame < _previousCpuPerFrame ? Comparison.Better : Comparison.Worse;
        }
        return Comparison.Same;
    }

    private static bool Significant(double value, double reference) =>
        Math.Abs(value - reference) * 100 > reference * SignificantPercent;

    private enum StepResult { Stepped, OnEdge, TooTired }

    private StepResult Step()
    {
        if (_tired == Levels * 2)
        {
            return StepResult.TooTired;
        }
        if (_state == TuneState.GoingRight)
        {
            if (_level == Levels - 1)
            {
                return StepResult.OnEdge;
            }
            _level++;
            _stepsRight++;
        }
        else if (_state == TuneState.GoingLeft)
        {
            if (_level == 0)
            {
                return StepResult.OnEdge;
            }
            _level--;
            _stepsLeft++;
        }
        _tired++;
        return StepResult.Stepped;
    }

    private void Turn()
    {
        if (_state == TuneState.GoingRight)
        {
            _state = TuneState.GoingLeft;
            _stepsLeft = 0;
        }
        else if (_state == TuneState.GoingLeft)
        {
            _state = TuneState.GoingRight;
            _stepsRight = 0;
        }
    }

    // dim_on_top: having gone one way and turned, one step back is the best level seen.
    private bool OnTop() => _state switch
    {
        TuneState.GoingRight => _stepsLeft > 1 && _stepsRight == 1,
        TuneState.GoingLeft => _stepsRight > 1 && _stepsLeft == 1,
        _ => false,
    };

    private void ParkOnTop()
    {
        _stepsRight = _stepsLeft = _tired = _parked = 0;
        _state = TuneState.ParkedOnTop;
    }

    private void ExitParking()
    {
        _state = _level > 0 ? TuneState.GoingLeft : TuneState.GoingRight;
        Step();
    }
}
