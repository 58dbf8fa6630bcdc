using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Text;
using PacketDotNet;
using UserspaceDr.Io.CaptureFiles;

namespace UserspaceDr.PcapGen;

/// <summary>
/// One fixture being scripted: the input frames, the frames udr must send for them and why, on a fixed clock.
/// Every input frame is recorded with the reason udr must count for it (README's names) and at most one output
/// frame, stamped with the input frame's time as the replay does.
/// </summary>
internal sealed partial class Fixture(string name, string title, string purpose)
{
    private readonly List<string> _frameNotes = [];
    private long _clockMicroseconds = Lab.EpochMicroseconds;

    public string Name { get; } = name;
    public string Title { get; } = title;
    public string Purpose { get; } = purpose;
    public DirectorModel Director { get; } = new();
    public bool AnswerArp { get; init; }
    public bool ChecksumNotReady { get; init; }

    /// <summary>The neighbours the fixture is replayed with (the IPv4 servers, or their IPv6 addresses).</summary>
    public RealServer[] Neighbors { get; init; } = Lab.Neighbors;
    public List<PcapRecord> Input { get; } = [];
    public List<PcapRecord> Expected { get; } = [];
    public SortedDictionary<string, int> Reasons { get; } = new(StringComparer.Ordinal);
    public SortedDictionary<string, (int Connections, int Frames)> PerServer { get; } = new(StringComparer.Ordinal);
    public List<string> Notes { get; } = [];
    public IReadOnlyList<string> FrameNotes => _frameNotes;

    public long NowMs => _clockMicroseconds / 1000;

    /// <summary>Gap after each frame unless a script waits longer.</summary>
    public long GapMicroseconds { get; set; } = 1000;

    public void Wait(TimeSpan time) => _clockMicroseconds += (long)time.TotalMicroseconds;

    /// <summary>Records one input frame, its reason and its expected output (null: udr sends nothing).</summary>
    public void Record(byte[] input, string reason, byte[]? output, string description, string? outcome = null)
    {
        Input.Add(new PcapRecord(_clockMicroseconds, input));
        if (output is not null)
        {
            Expected.Add(new PcapRecord(_clockMicroseconds, output));
        }
        Reasons[reason] = Reasons.GetValueOrDefault(reason) + 1;
        if (description.Length > 0)
        {
            string seconds = ((_clockMicroseconds - Lab.EpochMicroseconds) / 1e6).ToString("0.000", CultureInfo.InvariantCulture);
            _frameNotes.Add($"| {Input.Count.ToString(CultureInfo.InvariantCulture)} | {seconds} | {description} | `{reason}`{(outcome is null ? "" : " " + outcome)} |");
        }
        _clockMicroseconds += GapMicroseconds;
    }

    /// <summary>A frame udr sends nothing for.</summary>
    public void NoOutput(byte[] input, string reason, string description) => Record(input, reason, null, description);

    /// <summary>
    /// A TCP segment or UDP datagram for a virtual service: the IPVS model decides (connection, scheduler, TTL) and
    /// the expected frame follows from the decision. Returns the server it went to, if any.
    /// </summary>
    public RealServer? Service(byte[] frame, string description)
    {
        var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame);
        IPv4Packet ip = ethernet.Extract<IPv4Packet>() ?? throw new InvalidOperationException("not IPv4");
        int offset = Build.IpOffset(frame);
        ushort flagsAndOffset = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(offset + 6));
        bool fragment = (flagsAndOffset & 0x3FFF) != 0;
        Protocol protocol;
        int clientPort, virtualPort;
        TcpFlagSet flags = TcpFlagSet.None;
        if (ip.Protocol == PacketDotNet.ProtocolType.Tcp)
        {
            protocol = Protocol.Tcp;
            int tcp = offset + (ip.HeaderLength * 4);
            clientPort = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(tcp));
            virtualPort = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(tcp + 2));
            byte bits = frame[tcp + 13];
            flags = new TcpFlagSet(Syn: (bits & 0x02) != 0, Ack: (bits & 0x10) != 0, Fin: (bits & 0x01) != 0, Rst: (bits & 0x04) != 0, Psh: (bits & 0x08) != 0);
        }
        else
        {
            protocol = Protocol.Udp;
            int udp = offset + (ip.HeaderLength * 4);
            clientPort = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(udp));
            virtualPort = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(udp + 2));
        }

        Decision decision = Director.Packet(protocol, ip.SourceAddress, clientPort, virtualPort, flags, NowMs);
        switch (decision.Kind)
        {
            case DecisionKind.TcpNotSyn:
                Record(frame, "tcp-not-syn", null, description, "(no connection; IPVS schedules only on SYN)");
                return null;
            case DecisionKind.NoServer:
                Record(frame, "icmp-port-unreachable", Expect.IcmpError(frame, 3, 3), description, "→ ICMP port unreachable from the VIP");
                return null;
            default:
                break;
        }
        RealServer server = decision.Destination!.Server;
        Count(server, decision.Scheduled, frames: 1);
        if (fragment)
        {
            Director.RememberFragment(ip.SourceAddress, ip.DestinationAddress, ip.Id, protocol, decision.Destination);
        }
        string scheduled = decision.Scheduled ? " (new connection)" : "";
        if (ip.TimeToLive <= 1)
        {
            Record(frame, "icmp-time-exceeded", Expect.IcmpError(frame, 11, 0), description, $"→ ICMP time exceeded from the VIP; connection to {server.Name} kept");
            return server;
        }
        byte[] output = ChecksumNotReady && !fragment ? Expect.DirectRouteFinishingChecksum(frame, server) : Expect.DirectRoute(frame, server);
        Record(frame, "forwarded", output, description, $"→ {server.Name}{scheduled}");
        return server;
    }

    /// <summary>A non-first fragment: it follows its datagram's first fragment, or is dropped without one.</summary>
    public void LaterFragment(byte[] frame, string description)
    {
        var ip = ((EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame)).Extract<IPv4Packet>()!;
        FollowFirstFragment(frame, Director.FragmentDestination(ip.SourceAddress, ip.DestinationAddress, ip.Id, (Protocol)(byte)ip.Protocol), description);
    }

    /// <summary>A later fragment goes where its first fragment went (<paramref name="destination"/>), or is dropped without one.</summary>
    private void FollowFirstFragment(byte[] frame, Destination? destination, string description)
    {
        if (destination is null)
        {
            Record(frame, "fragment-without-first", null, description, "(dropped: its first fragment was never seen)");
            return;
        }
        Count(destination.Server, scheduled: false, frames: 1);
        Record(frame, "forwarded-fragment", Expect.DirectRoute(frame, destination.Server), description, $"→ {destination.Server.Name}, as its first fragment");
    }

    /// <summary>An ICMP (or ICMPv6) error to the VIP about a reply of a tracked connection: relayed to that connection's server.</summary>
    public void IcmpErrorAbout(byte[] frame, Protocol protocol, IPAddress client, int clientPort, int virtualPort, string description)
    {
        Destination? destination = Director.ConnectionOf(protocol, client, clientPort, virtualPort);
        if (destination is null)
        {
            Record(frame, "icmp-error-not-tracked", null, description, "(no connection: left to the kernel)");
            return;
        }
        Count(destination.Server, scheduled: false, frames: 0);
        Record(frame, "forwarded-icmp-error", Expect.DirectRoute(frame, destination.Server), description, $"→ {destination.Server.Name}, the connection's server");
    }

    private void Count(RealServer server, bool scheduled, int frames)
    {
        (int connections, int total) = PerServer.GetValueOrDefault(server.Name);
        PerServer[server.Name] = (connections + (scheduled ? 1 : 0), total + frames);
    }

    /// <summary>The udr command that replays this fixture (paths relative to the repository root).</summary>
    public string ReplayCommand()
    {
        var text = new StringBuilder();
        text.Append("udr replay --rules pcaps/").Append(Name).Append(".rules --in pcaps/").Append(Name).Append(".pcap --out ").Append(Name).Append(".out.pcap");
        text.Append(" --local-mac ").Append(Lab.Format(Lab.BalancerMac));
        foreach (RealServer neighbor in Neighbors)
        {
            text.Append(" --neighbor ").Append(neighbor.Address).Append('=').Append(Lab.Format(neighbor.Mac));
        }
        if (AnswerArp)
        {
            text.Append(" --answer-arp");
        }
        if (ChecksumNotReady)
        {
            text.Append(" --checksum-not-ready");
        }
        return text.ToString();
    }

    public string Markdown()
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.Append(c, $"# {Name}: {Title}\n\n{Purpose}\n\n");
        foreach (string note in Notes)
        {
            text.Append(c, $"- {note}\n");
        }
        if (Notes.Count > 0)
        {
            text.Append('\n');
        }
        text.Append(c, $"Files: `{Name}.pcap` (input, {Input.Count} frames), `{Name}.rules` (ipvsadm save syntax), ");
        text.Append(c, $"`{Name}.expected.pcap` ({Expected.Count} frames udr must send, stamped with their input frame's time).\n\n");
        text.Append("## Replay\n\n```sh\n").Append(ReplayCommand()).Append('\n');
        text.Append(c, $"cmp {Name}.out.pcap pcaps/{Name}.expected.pcap\n```\n\n");
        text.Append("## Rules\n\n```\n").Append(Director.RulesText()).Append("```\n\n");
        text.Append("## Reasons udr must count\n\n| reason | frames |\n|---|---|\n");
        foreach ((string reason, int count) in Reasons)
        {
            text.Append(c, $"| `{reason}` | {count} |\n");
        }
        if (PerServer.Count > 0)
        {
            text.Append("\n## Per real server\n\n| server | new connections | frames |\n|---|---|---|\n");
            foreach ((string server, (int connections, int frames)) in PerServer)
            {
                text.Append(c, $"| {server} | {connections} | {frames} |\n");
            }
        }
        if (_frameNotes.Count > 0)
        {
            text.Append("\n## Frames\n\n| # | time (s) | input | outcome |\n|---|---|---|---|\n");
            foreach (string line in _frameNotes)
            {
                text.Append(line).Append('\n');
            }
        }
        return text.ToString();
    }

    public void WriteTo(string directory)
    {
        PcapFile.Write(Path.Combine(directory, Name + ".pcap"), Input);
        PcapFile.Write(Path.Combine(directory, Name + ".expected.pcap"), Expected);
        File.WriteAllText(Path.Combine(directory, Name + ".rules"), Director.RulesText());
        File.WriteAllText(Path.Combine(directory, Name + ".md"), Markdown());
    }
}
