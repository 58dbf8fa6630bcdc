using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using UserspaceDr.Admin.Control;
using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.Control;

/// <summary>
/// The daemon (artifacts/udr/udr run in the lab's balancer) administered over its control socket while real
/// traffic flows: a continuous UDP stream (four flows) and eight open TCP connections through udr to echo servers on
/// both real servers survive 200 rapid edits (servers added and removed, weights and schedulers changed) with no
/// datagram lost and every connection on its server to the end. Then, on the same daemon: deleting a real server
/// drops its flows (expire_nodest_conn=0) until it is added back; counters, -L -c, -S/-R through `udr adm`, errors
/// and exit statuses, and the rules file left as it was.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public class AdmLabTests
{
    private const string Vip = LabNetwork.Vip;
    private const int UdpPort = 5000;
    private const int TcpPort = 80;
    private const int UdpFlows = 4;
    private const int TcpConnections = 8;
    private const int Edits = 200;
    /// <summary>
    /// Each flow sends a datagram every 8 ms (500 datagrams/s in all): a continuous stream, and one a worker's ring
    /// (32 blocks, each closed after 4 ms) holds for a quarter of a second should the host stall the worker.
    /// </summary>
    private static readonly TimeSpan SendInterval = TimeSpan.FromMilliseconds(8);

    private const string Rules =
        "# the lab's services (this file must stay as written: udr adm changes live state only)\n" +
        "-A -t 198.18.0.100:80 -s wrr\n" +
        "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1\n" +
        "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n" +
        "-A -u 198.18.0.100:5000 -s rr\n" +
        "-a -u 198.18.0.100:5000 -r 198.18.0.11 -g -w 1\n" +
        "-a -u 198.18.0.100:5000 -r 198.18.0.12 -g -w 1\n";

    [SetUp]
    public void RequireRoot() => LabNetwork.RequireRoot();

    [Test]
    public void Udp_stream_and_tcp_connections_survive_200_live_edits_then_adm_works_end_to_end()
    {
        string udr = UdrBinary.Ensure();
        string directory = Path.Combine(Path.GetTempPath(), "udr-adm-lab-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(directory);
        var cleanup = new List<IDisposable>();
        try
        {
            string rulesPath = Path.Combine(directory, "rules");
            string socketPath = Path.Combine(directory, "udr.sock");
            File.WriteAllText(rulesPath, Rules);

            using var lab = new LabNetwork();
            foreach (LabHost rs in new[] { LabHost.Rs1, LabHost.Rs2 })
            {
                cleanup.Add(new EchoServers(lab, rs));
            }
            LabProcess daemon = lab.StartProcess(LabHost.Lb,
                $"exec {udr} run --interface eth0 --rules {rulesPath} --workers 2 --control {socketPath}");
            try
            {
                WaitForControlSocket(socketPath, daemon);
                Run(lab, daemon, udr, rulesPath, socketPath);
            }
            finally
            {
                StopGracefully(daemon);
                TestContext.Out.WriteLine("daemon log:\n" + daemon.Output + daemon.Error);
            }
            Assert.That(File.Exists(socketPath), Is.False, "the daemon removed its socket on SIGTERM");
        }
        finally
        {
            foreach (IDisposable item in cleanup)
            {
                item.Dispose();
            }
            System.IO.Directory.Delete(directory, recursive: true);
        }
    }

    private static void Run(LabNetwork lab, LabProcess daemon, string udr, string rulesPath, string socketPath)
    {
        // Traffic first: every flow is established (and has its server) before the first edit. The TCP connections
        // and a few datagrams of their own also warm udr's code paths up (its JIT), so that what the stream measures
        // is the edits: on a busy host a cold start can stall a worker longer than its ring holds (ring-drops).
        var tcp = Enumerable.Range(0, TcpConnections).Select(i => new EchoConnection(lab, i)).ToList();
        using var udp = new UdpStream(lab, UdpFlows);
        try
        {
            UdpStream.WarmUp(lab);
            udp.Start();
            Assert.That(udp.WaitForFirstEchoes(TimeSpan.FromSeconds(5)), Is.True, "every UDP flow is echoed before the edits");
            Dictionary<int, string> udpServers = udp.Servers();
            Assert.That(udpServers.Values.Distinct().Count(), Is.EqualTo(2), "rr spread the UDP flows over both servers");
            Assert.That(tcp.Select(c => c.Server).Distinct().Count(), Is.EqualTo(2), "wrr spread the TCP connections over both servers");

            // 200 edits, each a full validate-and-publish in the daemon, while the stream and the connections run.
            using var stop = new CancellationTokenSource();
            Task talking = Task.Run(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    foreach (EchoConnection connection in tcp)
                    {
                        connection.Exchange("ping");
                    }
                    Thread.Sleep(10);
                }
            });
            var clock = Stopwatch.StartNew();
            string[] edits = EditScript();
            foreach (string edit in edits)
            {
                ControlResponse response = Adm(socketPath, edit.Split(' '));
                Assert.That(response.ExitCode, Is.Zero, $"udr adm {edit}: {response.Stderr}");
                Thread.Sleep(5);
            }
            TimeSpan editing = clock.Elapsed;
            stop.Cancel();
            talking.Wait(TimeSpan.FromSeconds(10));
            Assert.That(talking.IsCompletedSuccessfully, Is.True, () => "TCP exchanges during the edits: " + talking.Exception);

            udp.StopSending();
            Assert.That(udp.WaitForAllEchoes(TimeSpan.FromSeconds(5)), Is.True, () => "UDP datagrams lost: " + udp.Lost());
            TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{Edits} edits in {editing.TotalMilliseconds:0} ms ({editing.TotalMilliseconds / Edits:0.0} ms each, 5 ms apart); " +
                $"{udp.Sent} datagrams echoed, none lost; {tcp.Sum(c => c.Exchanges)} TCP exchanges"));
            Assert.That(udp.Servers(), Is.EquivalentTo(udpServers), "every UDP flow stayed on its server");
            Assert.That(udp.MixedFlows(), Is.Empty, "no flow was ever echoed by the other server");
            foreach (EchoConnection connection in tcp)
            {
                Assert.That(connection.Complete(), Is.True, $"TCP connection {connection.Index} completed on {connection.Server}");
                Assert.That(connection.ServersSeen, Is.EqualTo(new[] { connection.Server }), $"TCP connection {connection.Index} stayed on its server");
            }

            // Counters: every datagram the stream sent went through udr once; direct routing counts no replies.
            string stats = AdmProcess(udr, socketPath, "", out int exitCode, out _, "-L", "-n", "--stats", "--exact");
            Assert.That(exitCode, Is.Zero);
            string udpLine = stats.Split('\n').First(l => l.StartsWith("UDP  198.18.0.100:5000", StringComparison.Ordinal));
            long[] udpCounters = [.. udpLine[33..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse)];
            Assert.That(udpCounters[0], Is.EqualTo(UdpFlows + 1), "Conns: the stream's flows and the warm-up flow");
            Assert.That(udpCounters[1], Is.EqualTo(udp.Sent + UdpStream.WarmUpDatagrams), "InPkts: every datagram, once");
            Assert.That((udpCounters[2], udpCounters[4]), Is.EqualTo((0L, 0L)), "OutPkts/OutBytes stay 0 in DR");

            // -L -c: the flows, from both workers, with the servers they were seen on.
            string connections = AdmProcess(udr, socketPath, "", out exitCode, out _, "-L", "-n", "-c");
            Assert.That(exitCode, Is.Zero);
            foreach ((int port, string server) in udp.Servers().Select(kv => (udp.Port(kv.Key), kv.Value)))
            {
                Assert.That(connections, Does.Match(
                    $"\nUDP [0-9]{{2}}:[0-9]{{2}}  UDP         198\\.18\\.0\\.1:{port} +198\\.18\\.0\\.100:5000 +{server.Replace(".", "\\.", StringComparison.Ordinal)}:5000\n"));
            }
            Assert.That(connections.Split('\n').Count(l => l.StartsWith("TCP ", StringComparison.Ordinal)), Is.EqualTo(TcpConnections));

            DeleteAndAddBack(socketPath, udp);
            AdministerThroughTheCli(udr, socketPath);
            Assert.That(File.ReadAllText(rulesPath), Is.EqualTo(Rules), "udr adm never writes the rules file");
            Assert.That(daemon.HasExited, Is.False, "the daemon is still running");
        }
        finally
        {
            tcp.ForEach(c => c.Dispose());
        }
    }

    /// <summary>The 200 edits: extra servers added and removed, weights of the live ones changed, schedulers changed.</summary>
    private static string[] EditScript()
    {
        var random = new Random(11);
        string[] schedulers = ["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "sh", "mh"];
        var extras = new HashSet<(string Service, int Host)>();
        var edits = new List<string>(Edits);
        while (edits.Count < Edits)
        {
            (string service, int port) = random.Next(2) == 0 ? ($"-t {Vip}:{TcpPort}", TcpPort) : ($"-u {Vip}:{UdpPort}", UdpPort);
            switch (random.Next(4))
            {
                case 0:
                    int host = 20 + random.Next(8);
                    edits.Add(extras.Add((service, host))
                        ? $"-a {service} -r 198.18.0.{host} -g -w {1 + random.Next(4)}"
                        : $"-d {service} -r 198.18.0.{host}");
                    if (edits[^1].StartsWith("-d", StringComparison.Ordinal))
                    {
                        extras.Remove((service, host));
                    }
                    break;
                case 1:
                    edits.Add($"-e {service} -r {(random.Next(2) == 0 ? LabNetwork.Rs1Address : LabNetwork.Rs2Address)}:{port} -g -w {random.Next(5)}");
                    break;
                default:
                    string scheduler = schedulers[random.Next(schedulers.Length)];
                    edits.Add($"-E {service} -s {scheduler}" + (scheduler is "sh" or "mh" && random.Next(2) == 0 ? $" -b {scheduler}-port" : ""));
                    break;
            }
        }
        return [.. edits];
    }

    /// <summary>expire_nodest_conn=0: a deleted server's flows are dropped; adding it back resumes them.</summary>
    private static void DeleteAndAddBack(string socketPath, UdpStream udp)
    {
        Dictionary<int, string> servers = udp.Servers();
        Assert.That(Adm(socketPath, "-d", "-u", $"{Vip}:{UdpPort}", "-r", LabNetwork.Rs2Address).ExitCode, Is.Zero);
        Dictionary<int, int> echoed = udp.Burst(10, TimeSpan.FromSeconds(1));
        foreach ((int flow, string server) in servers)
        {
            Assert.That(echoed[flow], Is.EqualTo(server == LabNetwork.Rs2Address ? 0 : 10),
                $"flow {flow} on {server} after deleting {LabNetwork.Rs2Address}");
        }
        Assert.That(Adm(socketPath, "-a", "-u", $"{Vip}:{UdpPort}", "-r", LabNetwork.Rs2Address, "-w", "1").ExitCode, Is.Zero);
        echoed = udp.Burst(10, TimeSpan.FromSeconds(1));
        Assert.That(echoed.Values, Is.All.EqualTo(10), "every flow is echoed again, on its own server");
        Assert.That(udp.Servers(), Is.EquivalentTo(servers));
        Assert.That(udp.MixedFlows(), Is.Empty);
    }

    /// <summary>The `udr adm` executable: output, errors, exit statuses, and -S/-R with -R reading stdin.</summary>
    private static void AdministerThroughTheCli(string udr, string socketPath)
    {
        string saved = AdmProcess(udr, socketPath, "", out int exitCode, out string error, "-S", "-n");
        Assert.That((exitCode, error), Is.EqualTo((0, "")));
        Assert.That(saved, Does.StartWith("-A -t 198.18.0.100:80 -s ").And.Contain("-a -u 198.18.0.100:5000 -r 198.18.0.12:5000 -g -w 1\n"));

        AdmProcess(udr, socketPath, "", out exitCode, out error, "-a", "-u", $"{Vip}:{UdpPort}", "-r", LabNetwork.Rs2Address);
        Assert.That((exitCode, error), Is.EqualTo((255, "Destination already exists\n")));
        AdmProcess(udr, socketPath, "", out exitCode, out error, "-A", "-t", Vip);
        Assert.That((exitCode, error), Is.EqualTo((2, "Zero port specified for non-persistent service\n")));
        AdmProcess(udr, socketPath, "", out exitCode, out error, "-L", "-u", $"{Vip}:9");
        Assert.That((exitCode, error), Is.EqualTo((1, "No such service\n")));

        AdmProcess(udr, socketPath, "", out exitCode, out _, "-C");
        Assert.That(exitCode, Is.Zero);
        Assert.That(AdmProcess(udr, socketPath, "", out _, out _, "-S", "-n"), Is.Empty);
        AdmProcess(udr, socketPath, "# restored by the lab test\n" + saved, out exitCode, out error, "-R");
        Assert.That((exitCode, error), Is.EqualTo((0, "")));
        Assert.That(AdmProcess(udr, socketPath, "", out _, out _, "-S", "-n"), Is.EqualTo(saved), "-S, -C, -R gives the same state back");

        string help = AdmProcess(udr, "/nonexistent/udr.sock", "", out exitCode, out _, "-h");
        Assert.That(exitCode, Is.Zero, "-h needs no daemon");
        Assert.That(help, Does.Contain("  udr adm -L|l [virtual-service] [options]\n"));
        AdmProcess(udr, "/nonexistent/udr.sock", "", out exitCode, out error, "-L", "-n");
        Assert.That(exitCode, Is.EqualTo(2));
        Assert.That(error, Does.StartWith("udr adm: cannot connect to /nonexistent/udr.sock"));
    }

    private static ControlResponse Adm(string socketPath, params string[] args) =>
        ControlClient.Send(socketPath, new ControlRequest("ipvsadm", [.. args]), TimeSpan.FromSeconds(10));

    private static string AdmProcess(string udr, string socketPath, string stdin, out int exitCode, out string error, params string[] args)
    {
        CommandResult result = ProcessRunner.Run(udr, ["adm", "--control", socketPath, .. args], TimeSpan.FromSeconds(30), standardInput: stdin);
        Assert.That(result.TimedOut, Is.False, $"udr adm {string.Join(' ', args)} did not finish");
        exitCode = result.ExitCode;
        error = result.Error;
        return result.Output;
    }

    private static void WaitForControlSocket(string socketPath, LabProcess daemon)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            Assert.That(daemon.HasExited, Is.False, () => "udr run ended: " + daemon.Output + daemon.Error);
            if (File.Exists(socketPath))
            {
                try
                {
                    if (Adm(socketPath, "-L", "-n").ExitCode == 0)
                    {
                        return;
                    }
                }
                catch (ControlClientException)
                {
                    // Not listening yet.
                }
            }
            Thread.Sleep(100);
        }
        Assert.Fail("the control socket did not come up");
    }

    private static void StopGracefully(LabProcess daemon)
    {
        if (daemon.HasExited)
        {
            return;
        }
        using (Process kill = Process.Start("kill", ["-TERM", daemon.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            kill.WaitForExit();
        }
        if (!daemon.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            daemon.Dispose();
        }
    }

    /// <summary>UDP and TCP echo servers on a real server, bound to the VIP, answering with their own address.</summary>
    private sealed class EchoServers : IDisposable
    {
        private readonly Socket _udp;
        private readonly TcpListener _tcp;
        private readonly string _name;
        private readonly ConcurrentBag<Socket> _accepted = [];
        private volatile bool _stopping;

        public EchoServers(LabNetwork lab, LabHost host)
        {
            _name = host == LabHost.Rs1 ? LabNetwork.Rs1Address : LabNetwork.Rs2Address;
            (_udp, _tcp) = lab.RunIn(host, () =>
            {
                var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 1 << 20 };
                udp.Bind(new IPEndPoint(IPAddress.Parse(Vip), UdpPort));
                var tcp = new TcpListener(IPAddress.Parse(Vip), TcpPort);
                tcp.Start();
                return (udp, tcp);
            });
            new Thread(ServeUdp) { IsBackground = true, Name = "udp echo " + _name }.Start();
            new Thread(ServeTcp) { IsBackground = true, Name = "tcp echo " + _name }.Start();
        }

        private void ServeUdp()
        {
            byte[] buffer = new byte[2048];
            byte[] prefix = Encoding.ASCII.GetBytes(_name + " ");
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            try
            {
                while (!_stopping)
                {
                    int length = _udp.ReceiveFrom(buffer, ref from);
                    _udp.SendTo([.. prefix, .. buffer.AsSpan(0, length)], from);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Closed at the end of the test.
            }
        }

        private void ServeTcp()
        {
            try
            {
                while (!_stopping)
                {
                    Socket connection = _tcp.AcceptSocket();
                    _accepted.Add(connection);
                    new Thread(() => Echo(connection)) { IsBackground = true }.Start();
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                // Closed at the end of the test.
            }
        }

        private void Echo(Socket connection)
        {
            try
            {
                using var stream = new NetworkStream(connection, ownsSocket: true);
                using var reader = new StreamReader(stream, Encoding.ASCII);
                using var writer = new StreamWriter(stream, Encoding.ASCII) { AutoFlush = true, NewLine = "\n" };
                while (reader.ReadLine() is string line)
                {
                    writer.WriteLine(_name + " " + line);
                }
                // The client finished: close our side too, completing the connection.
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                // Closed at the end of the test.
            }
        }

        public void Dispose()
        {
            _stopping = true;
            _udp.Dispose();
            _tcp.Stop();
            foreach (Socket socket in _accepted)
            {
                socket.Dispose();
            }
        }
    }

    /// <summary>A TCP connection from the client to VIP:80 that exchanges lines with its echo server.</summary>
    private sealed class EchoConnection : IDisposable
    {
        private readonly Socket _socket;
        private readonly StreamReader _reader;
        private readonly StreamWriter _writer;
        private readonly HashSet<string> _servers = [];

        public EchoConnection(LabNetwork lab, int index)
        {
            Index = index;
            _socket = lab.RunIn(LabHost.Client, () =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 5000, SendTimeout = 5000 };
                socket.Connect(new IPEndPoint(IPAddress.Parse(Vip), TcpPort));
                return socket;
            });
            var stream = new NetworkStream(_socket, ownsSocket: false);
            _reader = new StreamReader(stream, Encoding.ASCII);
            _writer = new StreamWriter(stream, Encoding.ASCII) { AutoFlush = true, NewLine = "\n" };
            Server = Exchange("hello");
        }

        public int Index { get; }

        public string Server { get; }

        public int Exchanges { get; private set; }

        public IEnumerable<string> ServersSeen => _servers;

        /// <summary>Sends a line and reads the echo; returns the server that answered.</summary>
        public string Exchange(string text)
        {
            string line = string.Create(CultureInfo.InvariantCulture, $"{text} {Index} {Exchanges}");
            _writer.WriteLine(line);
            string reply = _reader.ReadLine() ?? throw new IOException($"connection {Index} closed by the server");
            string[] parts = reply.Split(' ', 2);
            if (parts.Length != 2 || parts[1] != line)
            {
                throw new IOException($"connection {Index}: echo '{reply}' for '{line}'");
            }
            _servers.Add(parts[0]);
            Exchanges++;
            return parts[0];
        }

        /// <summary>A last exchange, then an orderly close: our FIN, the server's FIN, EOF.</summary>
        public bool Complete()
        {
            Exchange("bye");
            _socket.Shutdown(SocketShutdown.Send);
            return _reader.ReadLine() is null;
        }

        public void Dispose()
        {
            _reader.Dispose();
            _writer.Dispose();
            _socket.Dispose();
        }
    }

    /// <summary>
    /// A continuous UDP stream: <c>flows</c> client sockets (each its own flow) sending numbered datagrams every few
    /// milliseconds; every echo is recorded with the server that sent it.
    /// </summary>
    private sealed class UdpStream : IDisposable
    {
        private static readonly TimeSpan MaxDuration = TimeSpan.FromSeconds(40);
        private readonly Socket[] _sockets;
        private readonly ConcurrentDictionary<(int Flow, int Sequence), string> _echoes = new();
        private readonly int[] _sent;
        private readonly Thread[] _receivers;
        private Thread? _sender;
        private volatile bool _sending;
        private volatile bool _closed;

        public UdpStream(LabNetwork lab, int flows)
        {
            _sockets = lab.RunIn(LabHost.Client, () => Enumerable.Range(0, flows).Select(_ =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 1 << 20 };
                socket.Bind(new IPEndPoint(IPAddress.Parse(LabNetwork.ClientAddress), 0));
                socket.Connect(new IPEndPoint(IPAddress.Parse(Vip), UdpPort));
                return socket;
            }).ToArray());
            _sent = new int[flows];
            _receivers = [.. Enumerable.Range(0, flows).Select(flow => new Thread(() => Receive(flow)) { IsBackground = true })];
        }

        public int Sent => _sent.Sum();

        public const int WarmUpDatagrams = 20;

        /// <summary>A few datagrams on a flow of their own, echoed, before the measured stream starts.</summary>
        public static void WarmUp(LabNetwork lab)
        {
            using Socket socket = lab.RunIn(LabHost.Client, () =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 2000 };
                s.Bind(new IPEndPoint(IPAddress.Parse(LabNetwork.ClientAddress), 0));
                s.Connect(new IPEndPoint(IPAddress.Parse(Vip), UdpPort));
                return s;
            });
            byte[] buffer = new byte[2048];
            for (int i = 0; i < WarmUpDatagrams; i++)
            {
                socket.Send(Encoding.ASCII.GetBytes($"9 {i}"));
                socket.Receive(buffer);
            }
        }

        public int Port(int flow) => ((IPEndPoint)_sockets[flow].LocalEndPoint!).Port;

        public void Start()
        {
            foreach (Thread receiver in _receivers)
            {
                receiver.Start();
            }
            _sending = true;
            _sender = new Thread(Send) { IsBackground = true, Name = "udp stream" };
            _sender.Start();
        }

        private void Send()
        {
            var clock = Stopwatch.StartNew();
            while (_sending && clock.Elapsed < MaxDuration)
            {
                for (int flow = 0; flow < _sockets.Length; flow++)
                {
                    SendOne(flow);
                }
                Thread.Sleep(SendInterval);
            }
        }

        private void SendOne(int flow)
        {
            int sequence = _sent[flow];
            _sockets[flow].Send(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{flow} {sequence}")));
            _sent[flow] = sequence + 1;
        }

        private void Receive(int flow)
        {
            byte[] buffer = new byte[2048];
            try
            {
                while (!_closed)
                {
                    int length = _sockets[flow].Receive(buffer);
                    string[] parts = Encoding.ASCII.GetString(buffer, 0, length).Split(' ');
                    _echoes.TryAdd((int.Parse(parts[1], CultureInfo.InvariantCulture), int.Parse(parts[2], CultureInfo.InvariantCulture)), parts[0]);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Closed at the end of the test.
            }
        }

        public bool WaitForFirstEchoes(TimeSpan timeout) =>
            SpinWait.SpinUntil(() => Enumerable.Range(0, _sockets.Length).All(f => _echoes.ContainsKey((f, 0))), timeout);

        public void StopSending()
        {
            _sending = false;
            _sender?.Join();
        }

        public bool WaitForAllEchoes(TimeSpan timeout) => SpinWait.SpinUntil(() => _echoes.Count >= Sent, timeout);

        public string Lost()
        {
            var lost = new List<string>();
            for (int flow = 0; flow < _sockets.Length; flow++)
            {
                for (int sequence = 0; sequence < _sent[flow]; sequence++)
                {
                    if (!_echoes.ContainsKey((flow, sequence)))
                    {
                        lost.Add($"{flow}/{sequence}");
                    }
                }
            }
            // Runs of lost sequence numbers per flow ("flow/first-last"), and the flows' servers.
            var runs = new List<string>();
            foreach (IGrouping<string, string> flow in lost.GroupBy(l => l.Split('/')[0]))
            {
                int[] numbers = [.. flow.Select(l => int.Parse(l.Split('/')[1], CultureInfo.InvariantCulture))];
                int start = numbers[0];
                for (int i = 1; i <= numbers.Length; i++)
                {
                    if (i == numbers.Length || numbers[i] != numbers[i - 1] + 1)
                    {
                        runs.Add($"{flow.Key}/{start}-{numbers[i - 1]}");
                        if (i < numbers.Length)
                        {
                            start = numbers[i];
                        }
                    }
                }
            }
            string servers = string.Join(' ', Enumerable.Range(0, _sockets.Length).Select(f => $"{f}:{_echoes.GetValueOrDefault((f, 0))}/sent {_sent[f]}"));
            return $"{lost.Count} of {Sent}: {string.Join(' ', runs.Take(30))} (flows {servers})";
        }

        /// <summary>Flow → the server that echoed its first datagram.</summary>
        public Dictionary<int, string> Servers() => Enumerable.Range(0, _sockets.Length).ToDictionary(f => f, f => _echoes[(f, 0)]);

        /// <summary>Flows echoed by more than one server (must stay empty).</summary>
        public int[] MixedFlows() => [.. _echoes.GroupBy(e => e.Key.Flow).Where(g => g.Select(e => e.Value).Distinct().Count() > 1).Select(g => g.Key)];

        /// <summary>Sends <paramref name="count"/> more datagrams on every flow; returns how many each got back.</summary>
        public Dictionary<int, int> Burst(int count, TimeSpan wait)
        {
            int[] from = [.. _sent];
            for (int i = 0; i < count; i++)
            {
                for (int flow = 0; flow < _sockets.Length; flow++)
                {
                    SendOne(flow);
                }
                Thread.Sleep(SendInterval);
            }
            SpinWait.SpinUntil(() => Enumerable.Range(0, _sockets.Length).All(f =>
                Enumerable.Range(from[f], count).All(s => _echoes.ContainsKey((f, s)))), wait);
            return Enumerable.Range(0, _sockets.Length).ToDictionary(f => f, f => Enumerable.Range(from[f], count).Count(s => _echoes.ContainsKey((f, s))));
        }

        public void Dispose()
        {
            _sending = false;
            _sender?.Join();
            _closed = true;
            foreach (Socket socket in _sockets)
            {
                socket.Dispose();
            }
        }
    }
}
