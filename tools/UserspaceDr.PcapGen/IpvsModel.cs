using System.Globalization;
using System.Net;
using System.Text;

namespace UserspaceDr.PcapGen;

/// <summary>
/// A small, independent model of what Linux IPVS does with the fixtures' traffic, written from
/// the kernel's ip_vs_rr.c, ip_vs_wrr.c, ip_vs_proto_tcp.c and ip_vs_core.c (net/netfilter/ipvs). It never calls udr:
/// the expected output must come from the kernel's rules, not from the code under test.
/// </summary>
internal sealed class Destination(RealServer server, int port, int weight)
{
    public RealServer Server { get; } = server;
    public int Port { get; } = port;
    public int Weight { get; } = weight;
}

/// <summary>A scheduler's view of svc->destinations: new servers go to the head (list_add_rcu), so the list is newest-first.</summary>
internal abstract class SchedulerModel
{
    protected List<Destination> List { get; } = [];

    public IReadOnlyList<Destination> Destinations => List;

    public abstract string Name { get; }

    /// <summary>ip_vs_add_dest: insert at the head, then the scheduler's add_dest hook (if it has one).</summary>
    public virtual void Add(Destination destination) => List.Insert(0, destination);

    /// <summary>The scheduler's pick, or null (no server available: IPVS answers ICMP port unreachable).</summary>
    public abstract Destination? Schedule();
}

/// <summary>ip_vs_rr.c: a pointer to the last pick (initially the list head), scan forward wrapping, at most 2 passes.</summary>
internal sealed class RoundRobinModel : SchedulerModel
{
    private const int Head = -1;
    private int _last = Head;

    public override string Name => "rr";

    public override Destination? Schedule()
    {
        int last = _last;
        int position = last;
        int pass = 0;
        do
        {
            // list_for_each_entry_continue_rcu: from the entry after 'position' to the end of the list.
            for (position++; position < List.Count; position++)
            {
                if (List[position].Weight > 0)
                {
                    _last = position;
                    return List[position];
                }
                if (position == last)
                {
                    return null;
                }
            }
            position = Head;
            pass++;
        }
        while (pass < 2 && last != Head);
        return null;
    }
}

/// <summary>
/// ip_vs_wrr.c, including its add_dest hook (ip_vs_wrr_dest_changed), because a rules file is applied line by line
/// as "ipvsadm -R" does: -A runs init_svc on an empty list (mw = cw = 0), and each -a then moves the mark to the
/// head, recomputes di and mw, and keeps cw unless it is 0 or above mw. So after "-a rs1 -w 3; -a rs2 -w 1" the
/// list is [rs2, rs1], di = 1, mw = 3 and cw = 1: the first pass asks for weight &gt;= 1, and the picks run
/// rs2 rs1 rs1 rs1, rs2 rs1 rs1 rs1, ...
/// </summary>
internal sealed class WeightedRoundRobinModel : SchedulerModel
{
    private const int Head = -1;
    private int _position = Head;
    private int _currentWeight;
    private int _maxWeight;
    private int _step = 1;

    public override string Name => "wrr";

    public override void Add(Destination destination)
    {
        base.Add(destination);
        // ip_vs_wrr_dest_changed
        _position = Head;
        _step = GreatestCommonDivisorOfPositiveWeights();
        _maxWeight = List.Select(d => d.Weight).DefaultIfEmpty(0).Max() - (_step - 1);
        if (_currentWeight > _maxWeight || _currentWeight == 0)
        {
            _currentWeight = _maxWeight;
        }
        else if (_step > 1)
        {
            _currentWeight = (_currentWeight / _step * _step) + 1;
        }
    }

    private int GreatestCommonDivisorOfPositiveWeights()
    {
        int g = 0;
        foreach (Destination d in List)
        {
            if (d.Weight > 0)
            {
                g = g > 0 ? Gcd(d.Weight, g) : d.Weight;
            }
        }
        return g > 0 ? g : 1;
    }

    private static int Gcd(int a, int b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }
        return a;
    }

    /// <summary>ip_vs_wrr_schedule, line by line (no server is ever overloaded in the fixtures).</summary>
    public override Destination? Schedule()
    {
        if (_maxWeight == 0)
        {
            return null;
        }
        int position = _position;
        int last = position;
        int stop = int.MinValue;
        bool lastPass = false;
        bool restarted = false;
        while (true)
        {
            for (position++; position < List.Count; position++)
            {
                if (List[position].Weight >= _currentWeight)
                {
                    _position = position;
                    return List[position];
                }
                if (position == stop)
                {
                    _position = position;
                    return null;
                }
            }
            position = Head;
            _currentWeight -= _step;
            if (_currentWeight <= 0)
            {
                _currentWeight = _maxWeight;
                if (lastPass || last == Head)
                {
                    _position = position;
                    return null;
                }
                restarted = true;
            }
            lastPass = _currentWeight <= _step;
            if (lastPass && restarted && last != Head)
            {
                stop = last;
            }
        }
    }
}

/// <summary>
/// wlc, only as far as the fixtures need it: with no server of positive weight there is nothing to pick. Anything
/// else is refused, so a fixture cannot silently depend on a model that was never written.
/// </summary>
internal sealed class NoPositiveWeightModel(string name) : SchedulerModel
{
    public override string Name { get; } = name;

    public override Destination? Schedule() =>
        List.Any(d => d.Weight > 0) ? throw new NotSupportedException($"the {Name} model only covers services without a usable server") : null;
}

internal enum Protocol : byte
{
    Tcp = 6,
    Udp = 17,
}

/// <summary>One virtual service (-A) and its real servers (-a), in the order the rules file adds them.</summary>
internal sealed class ServiceModel(Protocol protocol, int port, SchedulerModel scheduler, IPAddress vip)
{
    private readonly List<string> _lines = [];

    public Protocol Protocol { get; } = protocol;
    public int Port { get; } = port;
    public SchedulerModel Scheduler { get; } = scheduler;

    public IPAddress Vip { get; } = vip;

    public string Key => $"{(Protocol == Protocol.Tcp ? "-t" : "-u")} {WithPort(Vip, Port)}";

    public ServiceModel Add(RealServer server, int weight)
    {
        Scheduler.Add(new Destination(server, Port, weight));
        _lines.Add($"-a {Key} -r {WithPort(server.Address, Port)} -g -w {weight.ToString(CultureInfo.InvariantCulture)}");
        return this;
    }

    /// <summary>ipvsadm's "address:port", "[address]:port" for IPv6.</summary>
    private static string WithPort(IPAddress address, int port) =>
        (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString()) +
        ":" + port.ToString(CultureInfo.InvariantCulture);

    /// <summary>The service in ipvsadm save syntax (-A then each -a, in the order they were applied).</summary>
    public void WriteRules(StringBuilder text)
    {
        text.Append("-A ").Append(Key).Append(" -s ").Append(Scheduler.Name).Append('\n');
        foreach (string line in _lines)
        {
            text.Append(line).Append('\n');
        }
    }
}

/// <summary>IPVS TCP states (ip_vs_proto_tcp.c order).</summary>
internal enum TcpState
{
    None, Established, SynSent, SynRecv, FinWait, TimeWait, Close, CloseWait, LastAck, Listen, SynAck,
}

/// <summary>
/// The director: services, the connection table (key = protocol, client address and port, virtual port) with
/// per-state timeouts, and where each fragmented datagram's first fragment went.
/// </summary>
internal sealed class DirectorModel
{
    /// <summary>tcp_states[] INPUT_ONLY rows (DR: the director never sees the replies), columns in <see cref="TcpState"/> order.</summary>
    private static readonly TcpState[][] InputOnly =
    [
        /* syn */ [TcpState.SynRecv, TcpState.Established, TcpState.Established, TcpState.SynRecv, TcpState.SynRecv, TcpState.SynRecv, TcpState.SynRecv, TcpState.SynRecv, TcpState.SynRecv, TcpState.SynRecv, TcpState.SynRecv],
        /* fin */ [TcpState.Close, TcpState.FinWait, TcpState.SynSent, TcpState.TimeWait, TcpState.FinWait, TcpState.TimeWait, TcpState.Close, TcpState.CloseWait, TcpState.LastAck, TcpState.Listen, TcpState.TimeWait],
        /* ack */ [TcpState.Established, TcpState.Established, TcpState.SynSent, TcpState.Established, TcpState.FinWait, TcpState.TimeWait, TcpState.Close, TcpState.CloseWait, TcpState.Close, TcpState.Listen, TcpState.Established],
        /* rst */ [TcpState.Close, TcpState.Close, TcpState.Close, TcpState.SynRecv, TcpState.Close, TcpState.Close, TcpState.Close, TcpState.Close, TcpState.LastAck, TcpState.Listen, TcpState.Close],
    ];

    /// <summary>Seconds, ip_vs_proto_tcp.c tcp_timeouts[] in <see cref="TcpState"/> order.</summary>
    private static readonly int[] TcpTimeouts = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];
    private const int UdpTimeout = 300;

    private sealed class Connection(Destination destination)
    {
        public Destination Destination { get; } = destination;
        public TcpState State { get; set; }
        public long ExpiresAtMs { get; set; }
    }

    private readonly List<ServiceModel> _services = [];
    private readonly Dictionary<(Protocol, string, int, int), Connection> _connections = [];
    private readonly Dictionary<(string, string, int, Protocol), Destination> _fragments = [];

    public IReadOnlyList<ServiceModel> Services => _services;

    public ServiceModel Service(Protocol protocol, int port, SchedulerModel scheduler, IPAddress? vip = null)
    {
        var service = new ServiceModel(protocol, port, scheduler, vip ?? Lab.Vip);
        _services.Add(service);
        return service;
    }

    public string RulesText()
    {
        var text = new StringBuilder();
        foreach (ServiceModel service in _services)
        {
            service.WriteRules(text);
        }
        return text.ToString();
    }

    /// <summary>What IPVS does with a TCP segment or UDP datagram addressed to a service.</summary>
    public Decision Packet(Protocol protocol, IPAddress client, int clientPort, int virtualPort, TcpFlagSet flags, long nowMs)
    {
        ServiceModel service = _services.Single(s => s.Protocol == protocol && s.Port == virtualPort);
        var key = (protocol, client.ToString(), clientPort, virtualPort);
        if (_connections.TryGetValue(key, out Connection? connection) && connection.ExpiresAtMs <= nowMs)
        {
            _connections.Remove(key); // the kernel's timer already fired
            connection = null;
        }
        bool isSyn = flags.Syn && !flags.Rst;
        if (connection is not null && protocol == Protocol.Tcp && isSyn &&
            connection.State is TcpState.TimeWait or TcpState.Close)
        {
            _connections.Remove(key); // conn_reuse_mode 1: a new connection on a closed one's port is scheduled afresh
            connection = null;
        }
        bool scheduled = false;
        if (connection is null)
        {
            if (protocol == Protocol.Tcp && !isSyn)
            {
                return new Decision(DecisionKind.TcpNotSyn, null, false);
            }
            Destination? picked = service.Scheduler.Schedule();
            if (picked is null)
            {
                return new Decision(DecisionKind.NoServer, null, false);
            }
            connection = new Connection(picked) { State = TcpState.None };
            _connections[key] = connection;
            scheduled = true;
        }
        if (protocol == Protocol.Tcp)
        {
            int row = flags.Rst ? 3 : flags.Syn ? 0 : flags.Fin ? 1 : flags.Ack ? 2 : -1;
            connection.State = row < 0 ? TcpState.Close : InputOnly[row][(int)connection.State];
            connection.ExpiresAtMs = nowMs + (TcpTimeouts[(int)connection.State] * 1000L);
        }
        else
        {
            connection.ExpiresAtMs = nowMs + (UdpTimeout * 1000L);
        }
        return new Decision(DecisionKind.Forward, connection.Destination, scheduled);
    }

    public void RememberFragment(IPAddress source, IPAddress destination, int identification, Protocol protocol, Destination server) =>
        _fragments[(source.ToString(), destination.ToString(), identification, protocol)] = server;

    public Destination? FragmentDestination(IPAddress source, IPAddress destination, int identification, Protocol protocol) =>
        _fragments.GetValueOrDefault((source.ToString(), destination.ToString(), identification, protocol));

    /// <summary>The connection an ICMP error quoting VIP:vport → client:cport belongs to.</summary>
    public Destination? ConnectionOf(Protocol protocol, IPAddress client, int clientPort, int virtualPort) =>
        _connections.TryGetValue((protocol, client.ToString(), clientPort, virtualPort), out Connection? c) ? c.Destination : null;
}

internal enum DecisionKind
{
    Forward,
    NoServer,
    TcpNotSyn,
}

internal sealed record Decision(DecisionKind Kind, Destination? Destination, bool Scheduled);

internal readonly record struct TcpFlagSet(bool Syn = false, bool Ack = false, bool Fin = false, bool Rst = false, bool Psh = false)
{
    public static TcpFlagSet None => default;
    public static TcpFlagSet SynOnly => new(Syn: true);
    public static TcpFlagSet AckOnly => new(Ack: true);
    public static TcpFlagSet PshAck => new(Ack: true, Psh: true);
    public static TcpFlagSet FinAck => new(Ack: true, Fin: true);
    public static TcpFlagSet RstAck => new(Ack: true, Rst: true);

    public override string ToString()
    {
        var parts = new List<string>();
        if (Syn) { parts.Add("SYN"); }
        if (Fin) { parts.Add("FIN"); }
        if (Rst) { parts.Add("RST"); }
        if (Psh) { parts.Add("PSH"); }
        if (Ack) { parts.Add("ACK"); }
        return string.Join('/', parts);
    }
}
