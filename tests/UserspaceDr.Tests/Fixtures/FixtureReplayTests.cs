using System.Net.NetworkInformation;
using PacketDotNet;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.CaptureFiles;

namespace UserspaceDr.Tests.Fixtures;

/// <summary>
/// Every fixture in pcaps/ replayed in-process (the code `udr replay` runs) and compared with its expected capture:
/// byte for byte, then decoded frame by frame, then by the reasons and per-server counts udr reports.
/// </summary>
public class FixtureReplayTests
{
    private static IEnumerable<TestCaseData> AllFixtures()
    {
        foreach (FixtureCase fixture in FixtureCatalog.All)
        {
            var data = new TestCaseData(fixture).SetArgDisplayNames(fixture.Name);
            yield return data;
        }
    }



    [TestCaseSource(nameof(AllFixtures))]
    public void Output_is_the_expected_capture_frame_for_frame(FixtureCase fixture)
    {
        var replay = FixtureReplay.Run(fixture);
        Assert.That(replay.Output, Has.Count.EqualTo(replay.Expected.Count), "number of frames udr sends");
        for (int i = 0; i < replay.Expected.Count; i++)
        {
            PcapRecord actual = replay.Output[i];
            PcapRecord expected = replay.Expected[i];
            Assert.That(actual.TimestampMicroseconds, Is.EqualTo(expected.TimestampMicroseconds), $"output frame {i + 1}: timestamp");
            Assert.That(actual.Data, Is.EqualTo(expected.Data), $"output frame {i + 1} (at {expected.TimestampMicroseconds} µs)");
        }
    }

    [TestCaseSource(nameof(AllFixtures))]
    public void Each_output_frame_decodes_to_what_its_input_must_become(FixtureCase fixture)
    {
        var replay = FixtureReplay.Run(fixture);
        IReadOnlyList<(PcapRecord Output, int InputIndex)> pairs = replay.OutputsWithInputs();
        Assert.That(replay.Output, Has.Count.EqualTo(replay.Expected.Count));
        PhysicalAddress[] servers = [FixtureCatalog.Rs1Mac, FixtureCatalog.Rs2Mac];
        for (int i = 0; i < pairs.Count; i++)
        {
            (PcapRecord output, int index) = pairs[i];
            Assert.That(index, Is.GreaterThanOrEqualTo(0), $"output frame {i + 1} has the time of no input frame");
            byte[] input = replay.Input[index].Data;
            FrameReason reason = replay.Result.Reasons[index];
            string what = $"{fixture.Name} input frame {index + 1} ({FrameReasons.Name(reason)})";
            if (DecodedFrame.IsIpv6(input))
            {
                AssertIpv6Output(input, output.Data, replay.Expected[i].Data, reason, servers, what);
                continue;
            }
            switch (reason)
            {
                case FrameReason.Forwarded or FrameReason.ForwardedFragment or FrameReason.ForwardedIcmpError:
                    PhysicalAddress expectedMac = DecodedFrame.Ethernet(replay.Expected[i].Data).DestinationHardwareAddress;
                    Assert.That(servers, Does.Contain(expectedMac), $"{what}: the expected capture sends it to a real server");
                    DecodedFrame.AssertDirectRouted(input, output.Data, expectedMac, what);
                    break;
                case FrameReason.IcmpTimeExceeded:
                    DecodedFrame.AssertIcmpError(input, output.Data, IcmpV4TypeCode.TimeExceeded, what);
                    break;
                case FrameReason.IcmpPortUnreachable:
                    DecodedFrame.AssertIcmpError(input, output.Data, IcmpV4TypeCode.UnreachablePort, what);
                    break;
                case FrameReason.ArpReply:
                    DecodedFrame.AssertArpReply(input, output.Data, what);
                    break;
                default:
                    Assert.Fail($"{what}: a frame with this reason must not produce output");
                    break;
            }
        }
    }

    private static void AssertIpv6Output(byte[] input, byte[] output, byte[] expected, FrameReason reason, PhysicalAddress[] servers, string what)
    {
        switch (reason)
        {
            case FrameReason.Forwarded or FrameReason.ForwardedFragment or FrameReason.ForwardedIcmpError:
                PhysicalAddress expectedMac = DecodedFrame.Ethernet(expected).DestinationHardwareAddress;
                Assert.That(servers, Does.Contain(expectedMac), $"{what}: the expected capture sends it to a real server");
                DecodedFrame.AssertDirectRouted6(input, output, expectedMac, what);
                break;
            case FrameReason.IcmpTimeExceeded:
                DecodedFrame.AssertIcmpv6Error(input, output, 3, 0, what);
                break;
            case FrameReason.Icmpv6PacketTooBig:
                DecodedFrame.AssertIcmpv6Error(input, output, 2, 0, what);
                break;
            case FrameReason.IcmpPortUnreachable:
                DecodedFrame.AssertIcmpv6Error(input, output, 1, 4, what);
                break;
            case FrameReason.NeighborAdvertisement:
                DecodedFrame.AssertNeighborAdvertisement(input, output, what);
                break;
            default:
                Assert.Fail($"{what}: a frame with this reason must not produce output");
                break;
        }
    }

    [TestCaseSource(nameof(AllFixtures))]
    public void Every_input_frame_is_counted_under_its_reason(FixtureCase fixture)
    {
        var replay = FixtureReplay.Run(fixture);
        Assert.That(replay.Result.Reasons, Has.Count.EqualTo(replay.Input.Count), "one reason per input frame");
        var counted = new Dictionary<FrameReason, int>();
        foreach (FrameReason reason in Enum.GetValues<FrameReason>())
        {
            long count = replay.Result.Counters[reason];
            Assert.That(replay.Result.Reasons.Count(r => r == reason), Is.EqualTo(count), $"{FrameReasons.Name(reason)}: returned reasons agree with the counters");
            if (count != 0)
            {
                counted[reason] = (int)count;
            }
        }
        Assert.That(counted, Is.EquivalentTo(fixture.Reasons), "every reason's count (FrameReason → frames)");
        Assert.That(replay.Result.Counters.Total(Verdict.Transmit) + replay.Result.Counters.Total(Verdict.Reply), Is.EqualTo(replay.Output.Count),
            "every transmit and reply verdict, and only those, wrote a frame");
    }

    private static IEnumerable<TestCaseData> SingleServiceFixtures()
    {
        foreach (FixtureCase fixture in FixtureCatalog.All.Where(f => f.PerServer is not null))
        {
            var data = new TestCaseData(fixture).SetArgDisplayNames(fixture.Name);
            yield return data;
        }
    }

    [TestCaseSource(nameof(SingleServiceFixtures))]
    public void Per_server_counts_are_the_expected_ones(FixtureCase fixture)
    {
        var replay = FixtureReplay.Run(fixture);
        VirtualService service = replay.Result.Rules.Services.Single();
        var actual = new Dictionary<string, (int, int)>();
        foreach (RealServer server in service.Destinations)
        {
            TrafficCounters traffic = replay.Result.Counters.Read(server);
            actual[server.ToString().Split(':')[0]] = ((int)traffic.Connections, (int)traffic.InPackets);
        }
        Assert.That(actual, Is.EquivalentTo(fixture.PerServer!), "server → (new connections, frames)");
    }
}
