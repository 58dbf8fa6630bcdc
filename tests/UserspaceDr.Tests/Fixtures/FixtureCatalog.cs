using System.Net.NetworkInformation;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.Fixtures;

/// <summary>
/// What each fixture in pcaps/ must produce, written down by hand from IPVS's rules (independently of the generator
/// that wrote the expected captures, and of udr): the replay flags, the exact count of every reason, and for
/// single-service fixtures the per-server new-connection and frame counts.
/// </summary>
public sealed record FixtureCase(string Name)
{
    public bool AnswerArp { get; init; }
    public bool ChecksumNotReady { get; init; }

    /// <summary>An IPv6 fixture: replayed with the servers' IPv6 addresses as neighbours.</summary>
    public bool Ipv6 { get; init; }
    public required IReadOnlyDictionary<FrameReason, int> Reasons { get; init; }

    /// <summary>Real server address → (new connections, frames), for fixtures with one virtual service.</summary>
    public IReadOnlyDictionary<string, (int Connections, int Frames)>? PerServer { get; init; }

    public override string ToString() => Name;
}

internal static class FixtureCatalog
{
    public static readonly PhysicalAddress ClientMac = Mac("02:00:00:00:00:01");
    public static readonly PhysicalAddress BalancerMac = Mac("02:00:00:00:00:02");
    public static readonly PhysicalAddress Rs1Mac = Mac("02:00:00:00:00:11");
    public static readonly PhysicalAddress Rs2Mac = Mac("02:00:00:00:00:12");
    public const string Vip = "198.18.0.100";
    public const string Rs1 = "198.18.0.11";
    public const string Rs2 = "198.18.0.12";
    public const string Rs1v6 = "2001:2::11";
    public const string Rs2v6 = "2001:2::12";

    public static PhysicalAddress Mac(string text) => PhysicalAddress.Parse(text.Replace(':', '-'));

    public static IReadOnlyList<FixtureCase> All { get; } =
    [
        new("dr-tcp")
        {
            Reasons = new Dictionary<FrameReason, int>
            {
                [FrameReason.Forwarded] = 17, [FrameReason.ForwardedIcmpError] = 1, [FrameReason.IcmpErrorNotTracked] = 1, [FrameReason.TcpNotSyn] = 1,
            },
            // rs2: c1 (SYN, ACK, request, 1400 B, FIN, ACK, reuse SYN on FIN_WAIT), c3 (SYN, FIN), c2' (SYN, ACK); rs1: c2 (4), c3' (2).
            PerServer = new Dictionary<string, (int, int)> { [Rs1] = (2, 6), [Rs2] = (3, 11) },
        },
        new("dr-udp")
        {
            Reasons = new Dictionary<FrameReason, int> { [FrameReason.Forwarded] = 24 },
            PerServer = new Dictionary<string, (int, int)> { [Rs1] = (3, 12), [Rs2] = (3, 12) },
        },
        new("dr-udp-timeout")
        {
            Reasons = new Dictionary<FrameReason, int> { [FrameReason.Forwarded] = 6 },
            // A → rs2 (3 frames); B → rs1, expires, → rs2 (2 frames there).
            PerServer = new Dictionary<string, (int, int)> { [Rs1] = (1, 1), [Rs2] = (2, 5) },
        },
        new("dr-wrr-distribution")
        {
            Reasons = new Dictionary<FrameReason, int> { [FrameReason.Forwarded] = 4000 },
            PerServer = new Dictionary<string, (int, int)> { [Rs1] = (3000, 3000), [Rs2] = (1000, 1000) },
        },
        new("dr-vlan")
        {
            Reasons = new Dictionary<FrameReason, int> { [FrameReason.Forwarded] = 7, [FrameReason.IcmpTimeExceeded] = 1 },
            PerServer = new Dictionary<string, (int, int)> { [Rs1] = (2, 3), [Rs2] = (3, 5) },
        },
        new("dr-ip-options")
        {
            Reasons = new Dictionary<FrameReason, int> { [FrameReason.Forwarded] = 5 },
        },
        new("dr-fragments")
        {
            Reasons = new Dictionary<FrameReason, int>
            {
                [FrameReason.Forwarded] = 4, [FrameReason.ForwardedFragment] = 4, [FrameReason.FragmentWithoutFirst] = 1,
            },
            PerServer = new Dictionary<string, (int, int)> { [Rs1] = (1, 3), [Rs2] = (1, 5) },
        },
        new("dr-ttl")
        {
            Reasons = new Dictionary<FrameReason, int> { [FrameReason.Forwarded] = 2, [FrameReason.IcmpTimeExceeded] = 4 },
        },
        new("dr-no-server")
        {
            Reasons = new Dictionary<FrameReason, int> { [FrameReason.IcmpPortUnreachable] = 3, [FrameReason.TcpNotSyn] = 1 },
        },
        new("dr-checksum-partial")
        {
            ChecksumNotReady = true,
            Reasons = new Dictionary<FrameReason, int> { [FrameReason.Forwarded] = 6 },
        },
        new("dr-malformed")
        {
            Reasons = new Dictionary<FrameReason, int>
            {
                [FrameReason.EthernetTruncated] = 2, [FrameReason.IpTruncated] = 2, [FrameReason.IpHeaderLengthInvalid] = 1,
                [FrameReason.IpVersionInvalid] = 2, [FrameReason.IpTotalLengthInvalid] = 3, [FrameReason.IpChecksumInvalid] = 1,
                [FrameReason.TransportTruncated] = 4, [FrameReason.Forwarded] = 2,
            },
        },
        new("not-for-us")
        {
            Reasons = new Dictionary<FrameReason, int>
            {
                [FrameReason.NotForVirtualAddress] = 2, [FrameReason.NotForThisHost] = 1, [FrameReason.NotIp] = 1,
                [FrameReason.NoVirtualService] = 2, [FrameReason.IcmpForVirtualAddress] = 1, [FrameReason.OtherProtocol] = 1,
                [FrameReason.SourceIsVirtualAddress] = 1, [FrameReason.ArpNotForVirtualAddress] = 1,
            },
        },
        new("arp")
        {
            AnswerArp = true,
            Reasons = new Dictionary<FrameReason, int>
            {
                [FrameReason.ArpReply] = 2, [FrameReason.ArpNotForVirtualAddress] = 2, [FrameReason.ArpMalformed] = 2, [FrameReason.Forwarded] = 1,
            },
            PerServer = new Dictionary<string, (int, int)> { [Rs1] = (1, 1) },
        },
        new("dr6")
        {
            Ipv6 = true,
            // Forwarded: c1 SYN, c1 ACK, c2 SYN behind two extension headers, c1's 1400 bytes, a whole UDP datagram, a first fragment.
            Reasons = new Dictionary<FrameReason, int>
            {
                [FrameReason.Forwarded] = 6, [FrameReason.ForwardedFragment] = 1, [FrameReason.FragmentWithoutFirst] = 1,
                [FrameReason.Icmpv6PacketTooBig] = 1, [FrameReason.IcmpTimeExceeded] = 1, [FrameReason.TcpNotSyn] = 1,
                [FrameReason.ForwardedIcmpError] = 1, [FrameReason.IcmpErrorNotTracked] = 1, [FrameReason.NoVirtualService] = 1,
                [FrameReason.NotForVirtualAddress] = 1, [FrameReason.IcmpForVirtualAddress] = 1, [FrameReason.Ipv6PayloadLengthInvalid] = 1,
                [FrameReason.Ipv6ExtensionHeadersTruncated] = 1, [FrameReason.TransportTruncated] = 1,
            },
        },
        new("ndp6")
        {
            Ipv6 = true,
            AnswerArp = true,
            Reasons = new Dictionary<FrameReason, int>
            {
                [FrameReason.NeighborAdvertisement] = 2, [FrameReason.NdpHopLimitInvalid] = 1,
                [FrameReason.NeighborSolicitationNotForVirtualAddress] = 1, [FrameReason.NdpMalformed] = 2,
            },
        },
    ];

    public static FixtureCase Get(string name) => All.Single(c => c.Name == name);

    /// <summary>The flags after --out that replay needs, as the fixture's NAME.md gives them.</summary>
    public static string ReplayFlags(FixtureCase fixture) =>
        $"--local-mac 02:00:00:00:00:02 --neighbor {(fixture.Ipv6 ? Rs1v6 : Rs1)}=02:00:00:00:00:11 --neighbor {(fixture.Ipv6 ? Rs2v6 : Rs2)}=02:00:00:00:00:12" +
        (fixture.AnswerArp ? " --answer-arp" : "") + (fixture.ChecksumNotReady ? " --checksum-not-ready" : "");


    public static string PcapsDirectory => RepositoryPaths.Pcaps;

    public static string PathOf(string name, string suffix) => Path.Combine(PcapsDirectory, name + suffix);
}
