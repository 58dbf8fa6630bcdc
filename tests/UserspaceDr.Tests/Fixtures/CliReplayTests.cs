using System.Text.RegularExpressions;
using PacketDotNet;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Io.CaptureFiles;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.Fixtures;

/// <summary>The published `udr` binary end to end on a fixture: exit codes, the written capture and the printed report.</summary>
[NonParallelizable]
public partial class CliReplayTests
{

    private static (int ExitCode, string Output) Udr(params string[] arguments) =>
        FixtureFilesTests.Run(UdrBinary.Ensure(), arguments, RepositoryPaths.Root, 60_000);

    [GeneratedRegex(@"^\s+-> (?<server>\S+)\s+conns\s+(?<conns>\d+) frames\s+(?<frames>\d+) bytes\s+\d+$", RegexOptions.Multiline)]
    private static partial Regex ServerLine();

    [GeneratedRegex(@"^  (?<verdict>transmit|reply|pass|drop)\s+(?<reason>[a-z][a-z0-9-]*)\s+(?<count>\d+)$", RegexOptions.Multiline)]
    private static partial Regex ReasonLine();

    [Test]
    public void Replay_of_a_fixture_exits_0_writes_the_expected_capture_and_reports_servers_and_reasons()
    {
        FixtureCase fixture = FixtureCatalog.Get("dr-tcp");
        string output = Path.Combine(Path.GetTempPath(), $"udr-{Guid.NewGuid():N}.pcap");
        try
        {
            (int exitCode, string report) = Udr(
            [
                "replay", "--rules", FixtureCatalog.PathOf(fixture.Name, ".rules"), "--in", FixtureCatalog.PathOf(fixture.Name, ".pcap"),
                "--out", output, .. FixtureCatalog.ReplayFlags(fixture).Split(' '),
            ]);
            Assert.That(exitCode, Is.Zero, report);
            Assert.That(File.ReadAllBytes(output), Is.EqualTo(File.ReadAllBytes(FixtureCatalog.PathOf(fixture.Name, ".expected.pcap"))),
                "the written capture is the expected one, byte for byte");

            Assert.That(report, Does.Contain("frames in: 20, frames out: 18"));
            Assert.That(report, Does.Contain("TCP 198.18.0.100:80"));
            var servers = ServerLine().Matches(report).ToDictionary(m => m.Groups["server"].Value, m => (int.Parse(m.Groups["conns"].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups["frames"].Value, System.Globalization.CultureInfo.InvariantCulture)));
            Assert.That(servers, Is.EquivalentTo(new Dictionary<string, (int, int)>
            {
                [$"{FixtureCatalog.Rs1}:80"] = fixture.PerServer![FixtureCatalog.Rs1],
                [$"{FixtureCatalog.Rs2}:80"] = fixture.PerServer![FixtureCatalog.Rs2],
            }), report);
            var reasons = ReasonLine().Matches(report).ToDictionary(m => m.Groups["reason"].Value, m => int.Parse(m.Groups["count"].Value, System.Globalization.CultureInfo.InvariantCulture));
            Assert.That(reasons, Is.EquivalentTo(fixture.Reasons.ToDictionary(r => FrameReasons.Name(r.Key), r => r.Value)), report);
        }
        finally
        {
            File.Delete(output);
        }
    }

    /// <summary>The dr-tcp capture through a firewall-mark service whose rule marks its VIP's port 80: the same frames leave.</summary>
    [Test]
    public void Replay_with_fwmark_rules_serves_the_capture_through_the_mark_service()
    {
        FixtureCase fixture = FixtureCatalog.Get("dr-tcp");
        string directory = Directory.CreateTempSubdirectory("udr-replay-fwm-").FullName;
        try
        {
            string rules = Path.Combine(directory, "fwm.rules");
            string marks = Path.Combine(directory, "marks");
            File.WriteAllText(rules, $"-A -f 1 -s rr\n-a -f 1 -r {FixtureCatalog.Rs1}:0 -g -w 1\n-a -f 1 -r {FixtureCatalog.Rs2}:0 -g -w 1\n");
            File.WriteAllText(marks, "*mangle\n-A PREROUTING -d 198.18.0.100/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n");
            string output = Path.Combine(directory, "out.pcap");
            (int exitCode, string report) = Udr(
            [
                "replay", "--rules", rules, "--fwmark-rules", marks, "--in", FixtureCatalog.PathOf(fixture.Name, ".pcap"),
                "--out", output, .. FixtureCatalog.ReplayFlags(fixture).Split(' '),
            ]);
            Assert.That(exitCode, Is.Zero, report);
            Assert.That(report, Does.Contain("frames in: 20, frames out: 18"));
            Assert.That(report, Does.Contain("FWM 1"));
            var conns = ServerLine().Matches(report).Sum(m => int.Parse(m.Groups["conns"].Value, System.Globalization.CultureInfo.InvariantCulture));
            Assert.That(conns, Is.EqualTo(fixture.PerServer!.Values.Sum(v => v.Item1)), report);

            File.WriteAllText(marks, "*mangle\n-A PREROUTING -d 198.18.0.100/32 -j CONNMARK --restore-mark\nCOMMIT\n");
            (int refused, string message) = Udr(["replay", "--rules", rules, "--fwmark-rules", marks, "--in", FixtureCatalog.PathOf(fixture.Name, ".pcap"),
                "--out", output, .. FixtureCatalog.ReplayFlags(fixture).Split(' ')]);
            Assert.That((refused, message), Is.EqualTo((2, $"udr: --fwmark-rules: {marks}:2: udr applies only MARK rules in mangle PREROUTING and INPUT, not '-j CONNMARK'\n")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    public void Replay_forwards_ipv6_by_direct_routing_to_an_ipv6_neighbor_and_answers_hop_limit_1()
    {
        string directory = Directory.CreateTempSubdirectory("udr-replay6-").FullName;
        try
        {
            string rules = Path.Combine(directory, "rules");
            File.WriteAllText(rules, "-A -t [2001:2::100]:80 -s rr\n-a -t [2001:2::100]:80 -r [2001:2::11]:80 -g -w 1\n");
            string input = Path.Combine(directory, "in.pcap");
            string output = Path.Combine(directory, "out.pcap");
            PcapFile.Write(input, [
                new PcapRecord(1_000, Forwarding.Frames6.Tcp(40000)),
                new PcapRecord(2_000, Forwarding.Frames6.Tcp(40000, syn: false, ack: true, payload: [1, 2, 3])),
                new PcapRecord(3_000, Forwarding.Frames6.Tcp(40001, hopLimit: 1)),
            ]);
            (int exitCode, string report) = Udr(["replay", "--rules", rules, "--in", input, "--out", output,
                "--local-mac", "02:00:00:00:00:02", "--neighbor", "2001:2::11=02:00:00:00:00:11"]);
            Assert.That(exitCode, Is.Zero, report);
            var frames = PcapFile.Read(output).Select(r => (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, r.Data)).ToArray();
            Assert.That(frames, Has.Length.EqualTo(3), report);
            Assert.Multiple(() =>
            {
                foreach (EthernetPacket forwarded in frames[..2])
                {
                    Assert.That(forwarded.DestinationHardwareAddress.ToString(), Is.EqualTo("020000000011"));
                    Assert.That(((IPv6Packet)forwarded.PayloadPacket).HopLimit, Is.EqualTo(63));
                    Assert.That(((IPv6Packet)forwarded.PayloadPacket).DestinationAddress.ToString(), Is.EqualTo("2001:2::100"));
                }
                var answer = (IPv6Packet)frames[2].PayloadPacket;
                Assert.That(answer.SourceAddress.ToString(), Is.EqualTo("2001:2::100"), "time exceeded from the VIP");
                Assert.That(frames[2].Extract<IcmpV6Packet>().Type, Is.EqualTo(IcmpV6Type.TimeExceeded));
                Assert.That(report, Does.Contain("[2001:2::11]:80"));
            });

            (exitCode, report) = Udr(["replay", "--rules", rules, "--in", input, "--out", output, "--local-mac", "02:00:00:00:00:02",
                "--neighbor", "2001:2::11=02:00:00:00:00:11", "--neighbor", "2001:2::11=02:00:00:00:00:12"]);
            Assert.That((exitCode, report.Trim()), Is.EqualTo((2, "udr: --neighbor: 2001:2::11 is given twice")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    public void Bad_input_exits_2_with_one_line_and_writes_nothing()
    {
        FixtureCase fixture = FixtureCatalog.Get("dr-tcp");
        string output = Path.Combine(Path.GetTempPath(), $"udr-{Guid.NewGuid():N}.pcap");
        string[] flags = FixtureCatalog.ReplayFlags(fixture).Split(' ');
        string rules = FixtureCatalog.PathOf(fixture.Name, ".rules");
        string capture = FixtureCatalog.PathOf(fixture.Name, ".pcap");

        (int exitCode, string message) = Udr(["replay", "--rules", rules, "--in", rules, "--out", output, .. flags]);
        Assert.That(exitCode, Is.EqualTo(2), message);
        Assert.That(message.TrimEnd('\n').Split('\n'), Has.Length.EqualTo(1), message);
        Assert.That(message, Does.StartWith("udr: --in ").And.Contain("not a pcap file"));
        Assert.That(File.Exists(output), Is.False, "nothing written");

        (exitCode, message) = Udr(["replay", "--rules", capture, "--in", capture, "--out", output, .. flags]);
        Assert.That(exitCode, Is.EqualTo(2), message);
        Assert.That(message, Does.StartWith("udr: rules file "));

        (exitCode, message) = Udr(["replay", "--rules", rules, "--in", capture, "--out", output, "--local-mac", "not-a-mac"]);
        Assert.That(exitCode, Is.EqualTo(2), message);
        Assert.That(File.Exists(output), Is.False, "nothing written");
    }

    [Test]
    public void Replay_encapsulates_for_a_tunnel_server_with_the_local_address_as_outer_source()
    {
        string directory = Path.Combine(Path.GetTempPath(), $"udr-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            string rules = Path.Combine(directory, "tun.rules");
            File.WriteAllText(rules, "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -i -w 1\n");
            byte[] syn = Forwarding.Frames.Tcp(Forwarding.Frames.Client, 40000, Forwarding.Frames.Vip, 80, syn: true, ttl: 64);
            string input = Path.Combine(directory, "in.pcap");
            string output = Path.Combine(directory, "out.pcap");
            UserspaceDr.Io.CaptureFiles.PcapFile.Write(input, [new UserspaceDr.Io.CaptureFiles.PcapRecord(1_000_000, syn)]);

            (int exitCode, string report) = Udr("replay", "--rules", rules, "--in", input, "--out", output,
                "--local-mac", "02:00:00:00:00:02", "--local-address", "198.18.0.2", "--neighbor", "198.18.0.11=02:00:00:00:00:11");

            Assert.That(exitCode, Is.Zero, report);
            IReadOnlyList<UserspaceDr.Io.CaptureFiles.PcapRecord> sent = UserspaceDr.Io.CaptureFiles.PcapFile.Read(output);
            Assert.That(sent, Has.Count.EqualTo(1), report);
            var ethernet = (PacketDotNet.EthernetPacket)PacketDotNet.Packet.ParsePacket(PacketDotNet.LinkLayers.Ethernet, sent[0].Data);
            var outer = (PacketDotNet.IPv4Packet)ethernet.PayloadPacket;
            Assert.Multiple(() =>
            {
                Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Forwarding.Frames.Rs1Mac));
                Assert.That((int)outer.Protocol, Is.EqualTo(4), "IP-in-IP");
                Assert.That(outer.SourceAddress.ToString(), Is.EqualTo("198.18.0.2"));
                Assert.That(outer.DestinationAddress.ToString(), Is.EqualTo(Forwarding.Frames.Rs1));
                Assert.That(outer.ValidIPChecksum, Is.True);
                Assert.That(outer.TimeToLive, Is.EqualTo(63), "the inner TTL after the decrement");
                // The inner packet is the client's SYN, unchanged but for its TTL.
                var inner = new PacketDotNet.IPv4Packet(new PacketDotNet.Utils.ByteArraySegment(sent[0].Data, 14 + 20, sent[0].Data.Length - 34));
                Assert.That(inner.DestinationAddress.ToString(), Is.EqualTo(Forwarding.Frames.Vip));
                Assert.That(inner.Extract<PacketDotNet.TcpPacket>().ValidTcpChecksum, Is.True);
                Assert.That(report, Does.Contain("forwarded"));
            });
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
