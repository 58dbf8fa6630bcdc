using System.Net.NetworkInformation;
using UserspaceDr.Admin;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.CaptureFiles;

namespace UserspaceDr.Tests.Fixtures;

/// <summary>A fixture loaded from pcaps/ and replayed in-process through PcapReplay.Run, the code `udr replay` runs.</summary>
internal sealed class FixtureReplay
{
    private FixtureReplay(FixtureCase fixture, IReadOnlyList<PcapRecord> input, IReadOnlyList<PcapRecord> expected, ReplayResult result)
    {
        Fixture = fixture;
        Input = input;
        Expected = expected;
        Result = result;
    }

    public FixtureCase Fixture { get; }
    public IReadOnlyList<PcapRecord> Input { get; }
    public IReadOnlyList<PcapRecord> Expected { get; }
    public ReplayResult Result { get; }
    public IReadOnlyList<PcapRecord> Output => Result.Output;

    public static FixtureReplay Run(FixtureCase fixture)
    {
        IpvsadmResult<RuleSetSpec> rules = RulesFile.Load(File.ReadAllText(FixtureCatalog.PathOf(fixture.Name, ".rules")));
        Assert.That(rules.IsSuccess, Is.True, () => $"{fixture.Name}.rules: {rules.Error?.Message}");
        var neighbors = new NeighborTable(new Dictionary<uint, NextHop>
        {
            [Ipv4Address.Parse(FixtureCatalog.Rs1)] = new NextHop(Udr(FixtureCatalog.Rs1Mac)),
            [Ipv4Address.Parse(FixtureCatalog.Rs2)] = new NextHop(Udr(FixtureCatalog.Rs2Mac)),
        }, new Dictionary<UInt128, NextHop>
        {
            [InetAddress.Parse(FixtureCatalog.Rs1v6).IPv6] = new NextHop(Udr(FixtureCatalog.Rs1Mac)),
            [InetAddress.Parse(FixtureCatalog.Rs2v6).IPv6] = new NextHop(Udr(FixtureCatalog.Rs2Mac)),
        });
        var options = new EngineOptions { LocalMac = Udr(FixtureCatalog.BalancerMac), AnswerArpForVirtualAddresses = fixture.AnswerArp };
        IReadOnlyList<PcapRecord> input = PcapFile.Read(FixtureCatalog.PathOf(fixture.Name, ".pcap"));
        IReadOnlyList<PcapRecord> expected = PcapFile.Read(FixtureCatalog.PathOf(fixture.Name, ".expected.pcap"));
        ReplayResult result = PcapReplay.Run(RuleSet.Build(rules.Value!), neighbors, options, input,
            flags: fixture.ChecksumNotReady ? FrameFlags.ChecksumNotReady : FrameFlags.None);
        return new FixtureReplay(fixture, input, expected, result);
    }

    public static MacAddress Udr(PhysicalAddress mac) => MacAddress.Read(mac.GetAddressBytes());

    /// <summary>The input frame each output frame answers: the replay stamps outputs with their input's time, and input times are unique.</summary>
    public IReadOnlyList<(PcapRecord Output, int InputIndex)> OutputsWithInputs()
    {
        var byTime = new Dictionary<long, int>();
        for (int i = 0; i < Input.Count; i++)
        {
            Assert.That(byTime.TryAdd(Input[i].TimestampMicroseconds, i), Is.True, $"{Fixture.Name}: two input frames share a timestamp");
        }
        return [.. Output.Select(o => (o, byTime.TryGetValue(o.TimestampMicroseconds, out int index) ? index : -1))];
    }

    public RealServer Server(string address) =>
        Result.Rules.Services.SelectMany(s => s.Destinations).Single(d => d.Address == InetAddress.Parse(address));
}
