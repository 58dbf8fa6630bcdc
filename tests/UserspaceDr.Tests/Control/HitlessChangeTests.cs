using System.Globalization;
using UserspaceDr.Admin;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Tests.Forwarding;

namespace UserspaceDr.Tests.Control;

/// <summary>
/// Live changes through ipvsadm commands, at the engine: every change is published as a new rule set between
/// frames (as the workers pick it up between batches), and established connections keep their real server through
/// any edit. Deleting a real server follows expire_nodest_conn=0: its connections' packets are dropped
/// (destination-removed) until it is added back, when the same server object returns (the kernel's dest trash).
/// The lab test (AdmLabTests) does the same through real sockets and the daemon.
/// </summary>
public class HitlessChangeTests
{
    /// <summary>An in-process data plane: one engine; a publish builds the next rule set from the running one.</summary>
    private sealed class EngineBackend(ForwardingEngine engine) : IIpvsBackend
    {
        private RuleSet _rules = RuleSet.Empty;

        public RuleSetSpec Rules => _rules.Spec;

        public RuleSet Running => _rules;

        public void Publish(RuleSetSpec rules)
        {
            _rules = RuleSet.Build(rules, _rules);
            engine.Snapshot = engine.Snapshot.WithRules(_rules);
        }

        public IpvsTimeouts Timeouts => new(engine.Timeouts.Tcp, engine.Timeouts.TcpFin, engine.Timeouts.Udp);

        public void SetTimeouts(IpvsTimeouts timeouts) =>
            engine.Snapshot = engine.Snapshot.WithTimeouts(engine.Timeouts.With(timeouts.Tcp, timeouts.TcpFin, timeouts.Udp));

        public IpvsState State() => IpvsState.FromRules(Rules);

        public void Zero(VirtualServiceSpec? service)
        {
        }

        public IReadOnlyList<IpvsConnection> Connections() => [];
    }

    private const string Vip = Frames.Vip;
    private static readonly string[] Schedulers = ["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "sh", "mh"];

    private ForwardingEngine _engine = null!;
    private EngineBackend _backend = null!;
    private IpvsadmExecutor _ipvsadm = null!;
    private long _now = 1000;

    [SetUp]
    public void Start()
    {
        _engine = new ForwardingEngine(new EngineOptions { LocalMac = Frames.UdrMac(Frames.BalancerMac) }, new ConnectionTable<uint>(4096, seed: 7));
        _engine.Snapshot = _engine.Snapshot.WithNeighbors(new NeighborTable(new Dictionary<uint, MacAddress>
        {
            [Ipv4Address.Parse(Frames.Rs1)] = Frames.UdrMac(Frames.Rs1Mac),
            [Ipv4Address.Parse(Frames.Rs2)] = Frames.UdrMac(Frames.Rs2Mac),
        }));
        _backend = new EngineBackend(_engine);
        _ipvsadm = new IpvsadmExecutor(_backend);
        Ipvsadm("-R",
            $"-A -t {Vip}:80 -s wrr\n" +
            $"-a -t {Vip}:80 -r {Frames.Rs1}:80 -g -w 1\n" +
            $"-a -t {Vip}:80 -r {Frames.Rs2}:80 -g -w 1\n" +
            $"-A -u {Vip}:53 -s rr\n" +
            $"-a -u {Vip}:53 -r {Frames.Rs1} -g\n" +
            $"-a -u {Vip}:53 -r {Frames.Rs2} -g\n");
    }

    private void Ipvsadm(string args, string stdin = "")
    {
        IpvsadmOutcome outcome = _ipvsadm.Execute("ipvsadm", args.Split(' ', StringSplitOptions.RemoveEmptyEntries), stdin);
        Assert.That(outcome.ExitCode, Is.Zero, $"ipvsadm {args}: {outcome.Stderr}");
    }

    /// <summary>Runs a frame through the engine; returns the reason and, when forwarded, the server it went to.</summary>
    private (FrameReason Reason, string? Server) Send(byte[] frame)
    {
        byte[] reply = new byte[ReplyBuilder.MaxReplyLength];
        FrameReason reason = _engine.ProcessWithReason(frame, FrameFlags.None, _now++, reply, out _);
        string? server = null;
        if (reason == FrameReason.Forwarded)
        {
            var mac = MacAddress.Read(frame);
            server = mac == Frames.UdrMac(Frames.Rs1Mac) ? Frames.Rs1 : mac == Frames.UdrMac(Frames.Rs2Mac) ? Frames.Rs2 : mac.ToString();
        }
        return (reason, server);
    }

    private static byte[] Datagram(ushort port, int sequence) =>
        Frames.Udp(Frames.Client, port, Vip, 53, System.Text.Encoding.ASCII.GetBytes(sequence.ToString(CultureInfo.InvariantCulture)));

    [Test]
    public void Connections_keep_their_server_through_200_edits_of_servers_weights_schedulers_and_methods()
    {
        var tcp = new Dictionary<ushort, string>();
        var udp = new Dictionary<ushort, string>();
        for (ushort port = 40000; port < 40040; port++)
        {
            (FrameReason reason, string? server) = Send(Frames.Tcp(Frames.Client, port, Vip, 80, syn: true));
            Assert.That(reason, Is.EqualTo(FrameReason.Forwarded));
            tcp[port] = server!;
            Assert.That(Send(Frames.Tcp(Frames.Client, port, Vip, 80, ack: true)), Is.EqualTo((FrameReason.Forwarded, server)));
        }
        for (ushort port = 50000; port < 50020; port++)
        {
            (FrameReason reason, string? server) = Send(Datagram(port, 0));
            Assert.That(reason, Is.EqualTo(FrameReason.Forwarded));
            udp[port] = server!;
        }
        Assert.That(tcp.Values.Distinct().Count(), Is.EqualTo(2), "wrr 1:1 spreads the flows over both servers");
        Assert.That(udp.Values.Distinct().Count(), Is.EqualTo(2));

        var random = new Random(5);
        var extras = new HashSet<(string Service, int Host)>();
        for (int edit = 0; edit < 200; edit++)
        {
            string service = random.Next(2) == 0 ? $"-t {Vip}:80" : $"-u {Vip}:53";
            ushort servicePort = service.StartsWith("-t", StringComparison.Ordinal) ? (ushort)80 : (ushort)53;
            switch (random.Next(5))
            {
                case 0:
                case 1:
                    int host = 20 + random.Next(10);
                    if (extras.Add((service, host)))
                    {
                        Ipvsadm($"-a {service} -r 198.18.0.{host} -g -w {1 + random.Next(5)}");
                    }
                    else
                    {
                        extras.Remove((service, host));
                        Ipvsadm($"-d {service} -r 198.18.0.{host}");
                    }
                    break;
                case 2:
                    string rs = random.Next(2) == 0 ? Frames.Rs1 : Frames.Rs2;
                    // An occasional change of method too: existing connections keep the one they were made with.
                    string method = random.Next(8) == 0 ? "-i" : "-g";
                    Ipvsadm($"-e {service} -r {rs}:{servicePort} {method} -w {random.Next(6)} -x {random.Next(3) * 100}");
                    break;
                default:
                    string scheduler = Schedulers[random.Next(Schedulers.Length)];
                    string flags = scheduler is "sh" or "mh" && random.Next(2) == 0 ? $" -b {scheduler}-port" : "";
                    string persistence = random.Next(4) == 0 ? " -p 60" : "";
                    Ipvsadm($"-E {service} -s {scheduler}{flags}{persistence}");
                    break;
            }
            foreach ((ushort port, string server) in tcp)
            {
                Assert.That(Send(Frames.Tcp(Frames.Client, port, Vip, 80, ack: true, payload: [1, 2, 3])), Is.EqualTo((FrameReason.Forwarded, server)),
                    $"edit {edit}: TCP flow {port}");
            }
            foreach ((ushort port, string server) in udp)
            {
                Assert.That(Send(Datagram(port, edit + 1)), Is.EqualTo((FrameReason.Forwarded, server)), $"edit {edit}: UDP flow {port}");
            }
        }
        foreach ((ushort port, string server) in tcp)
        {
            Assert.That(Send(Frames.Tcp(Frames.Client, port, Vip, 80, fin: true, ack: true)), Is.EqualTo((FrameReason.Forwarded, server)));
        }
        Assert.That(_backend.Running.Services.SelectMany(s => s.Destinations).Where(d => d.Address == InetAddress.Parse(Frames.Rs1)),
            Has.All.Property(nameof(RealServer.Removed)).False);
    }

    [Test]
    public void A_deleted_servers_connections_are_dropped_until_it_is_added_back()
    {
        var udp = new Dictionary<ushort, string>();
        for (ushort port = 50000; port < 50010; port++)
        {
            udp[port] = Send(Datagram(port, 0)).Server!;
        }
        RealServer rs2 = _backend.Running.Services.First(s => s.Port == 53).Destinations.First(d => d.Address == InetAddress.Parse(Frames.Rs2));

        Ipvsadm($"-d -u {Vip}:53 -r {Frames.Rs2}");
        Assert.That(rs2.Removed, Is.True);
        Assert.That(_backend.Running.Deleted.Select(d => d.Server), Does.Contain(rs2), "held in the trash while connections use it");
        foreach ((ushort port, string server) in udp)
        {
            Assert.That(Send(Datagram(port, 1)), Is.EqualTo(server == Frames.Rs2
                ? (FrameReason.DestinationRemoved, (string?)null)
                : (FrameReason.Forwarded, Frames.Rs1)), $"flow {port} on {server}");
        }
        Assert.That(Send(Datagram(51000, 0)), Is.EqualTo((FrameReason.Forwarded, Frames.Rs1)), "new flows go to the servers left");

        Ipvsadm($"-a -u {Vip}:53 -r {Frames.Rs2} -w 2");
        RealServer back = _backend.Running.Services.First(s => s.Port == 53).Destinations.First(d => d.Address == InetAddress.Parse(Frames.Rs2));
        Assert.That(back, Is.SameAs(rs2));
        Assert.That(back.Removed, Is.False);
        Assert.That(back.Weight, Is.EqualTo(2));
        foreach ((ushort port, string server) in udp)
        {
            Assert.That(Send(Datagram(port, 2)), Is.EqualTo((FrameReason.Forwarded, server)), $"flow {port} resumes on {server}");
        }
    }

    [Test]
    public void A_deleted_server_without_connections_is_forgotten()
    {
        RealServer rs2 = _backend.Running.Services.First(s => s.Port == 80).Destinations.First(d => d.Address == InetAddress.Parse(Frames.Rs2));
        Ipvsadm($"-d -t {Vip}:80 -r {Frames.Rs2}");
        Assert.That(_backend.Running.Deleted, Is.Empty);
        Ipvsadm($"-a -t {Vip}:80 -r {Frames.Rs2}");
        Assert.That(_backend.Running.Services.First(s => s.Port == 80).Destinations.First(d => d.Address == InetAddress.Parse(Frames.Rs2)),
            Is.Not.SameAs(rs2));
    }

    [Test]
    public void A_method_edit_keeps_the_server_object_and_applies_to_new_connections_only()
    {
        (FrameReason _, string? first) = Send(Frames.Tcp(Frames.Client, 41000, Vip, 80, syn: true));
        RealServer before = _backend.Running.Services.First(s => s.Port == 80).Destinations.First(d => d.Address == InetAddress.Parse(first!));
        Ipvsadm($"-e -t {Vip}:80 -r {first}:80 -i -w 1");
        RealServer after = _backend.Running.Services.First(s => s.Port == 80).Destinations.First(d => d.Address == InetAddress.Parse(first!));
        Assert.That(after, Is.SameAs(before));
        Assert.That(after.Method, Is.EqualTo(ForwardingMethod.Tunnel));
        Assert.That(Send(Frames.Tcp(Frames.Client, 41000, Vip, 80, ack: true)), Is.EqualTo((FrameReason.Forwarded, first)),
            "the connection keeps the method it was made with");
    }
}
