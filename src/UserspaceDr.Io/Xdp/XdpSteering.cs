using System.Buffers.Binary;
using System.ComponentModel;
using System.Text;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Linux;

namespace UserspaceDr.Io.Xdp;

/// <summary>
/// The AF_XDP backend's kernel side on one interface: the address maps, the socket map, the steering program
/// (<see cref="XdpSteeringProgram"/>) and its attachment by a BPF link, which ends with the process however it ends.
/// <see cref="Select"/> puts a rule set's <see cref="TrafficSelection"/> into the maps (adding before removing, so no
/// frame of a service kept across the change is missed); <see cref="Register"/> binds a receive queue to a socket.
/// </summary>
public sealed class XdpSteering : IDisposable
{
    /// <summary>Entries per address map: far beyond any rule set (the AF_PACKET filter holds 255 per list).</summary>
    public const int MaxAddresses = 4096;

    /// <summary>Receive queues a socket map holds.</summary>
    public const int MaxQueues = 256;

    private const int VerifierLogBytes = 64 * 1024;

    private readonly SafeDescriptorHandle _destinations;
    private readonly SafeDescriptorHandle _natServers;
    private readonly SafeDescriptorHandle _ownAddresses;
    private readonly SafeDescriptorHandle _ipv6Destinations;
    private readonly SafeDescriptorHandle _ipv6NatServers;
    private readonly SafeDescriptorHandle _sockets;
    private readonly SafeDescriptorHandle _tunnelServers;
    private readonly SafeDescriptorHandle _program;
    private readonly SafeDescriptorHandle _link;
    private readonly byte _vipFlags;
    private TrafficSelection _selection = new([], [], []);

    /// <summary>Loads the program and attaches it to <paramref name="interfaceIndex"/> (driver mode where the driver has XDP, else generic).</summary>
    /// <param name="interfaceIndex">The link's interface index.</param>
    /// <param name="answerNeighborRequests">
    /// udr answers ARP and Neighbor Solicitations for the VIPs (<c>--answer-arp</c>), so they are taken in; without it
    /// they stay the kernel's (a balancer whose kernel holds the VIP answers them itself).
    /// </param>
    public XdpSteering(int interfaceIndex, bool answerNeighborRequests)
    {
        _vipFlags = answerNeighborRequests ? XdpSteeringProgram.ArpTarget : (byte)0;
        var opened = new List<SafeDescriptorHandle>();
        try
        {
            _destinations = Track(opened, CreateMap("udr_dst4", Interop.BPF_MAP_TYPE_HASH, 4, 1, MaxAddresses));
            _natServers = Track(opened, CreateMap("udr_nat4", Interop.BPF_MAP_TYPE_HASH, 4, 1, MaxAddresses));
            _ownAddresses = Track(opened, CreateMap("udr_own4", Interop.BPF_MAP_TYPE_HASH, 4, 1, MaxAddresses));
            _ipv6Destinations = Track(opened, CreateMap("udr_dst6", Interop.BPF_MAP_TYPE_HASH, 16, 1, MaxAddresses));
            _ipv6NatServers = Track(opened, CreateMap("udr_nat6", Interop.BPF_MAP_TYPE_HASH, 16, 1, MaxAddresses));
            _sockets = Track(opened, CreateMap("udr_xsks", Interop.BPF_MAP_TYPE_XSKMAP, 4, 4, MaxQueues));
            _tunnelServers = Track(opened, CreateMap("udr_tun4", Interop.BPF_MAP_TYPE_HASH, 8, 1, MaxAddresses));
            ulong[] instructions = XdpSteeringProgram.Build(new XdpSteeringMaps(_destinations.Fd, _natServers.Fd, _ownAddresses.Fd,
                _ipv6Destinations.Fd, _ipv6NatServers.Fd, _sockets.Fd, _tunnelServers.Fd));
            _program = Track(opened, LoadProgram(instructions));
            _link = Track(opened, Attach(_program, interfaceIndex));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            DisposeAll(opened);
            throw new InvalidOperationException($"the AF_XDP backend needs libbpf 0.7 or later ({Interop.Libraries.Libbpf}; Debian: apt install libbpf1): {e.Message}", e);
        }
        catch
        {
            DisposeAll(opened);
            throw;
        }
    }

    private static void DisposeAll(List<SafeDescriptorHandle> handles)
    {
        foreach (SafeDescriptorHandle handle in handles)
        {
            handle.Dispose();
        }
    }

    /// <summary>Instructions in the loaded program (for the log).</summary>
    public int InstructionCount { get; private set; }

    /// <summary>Takes in what <paramref name="selection"/> names from now on, and no longer what it does not.</summary>
    public void Select(TrafficSelection selection)
    {
        ArgumentNullException.ThrowIfNull(selection);
        Replace(_destinations, _selection.VirtualAddresses.Select(Key), selection.VirtualAddresses.Select(Key), _vipFlags);
        Replace(_natServers, _selection.NatServers.Select(Key), selection.NatServers.Select(Key), 0);
        Replace(_ownAddresses, _selection.OwnAddresses.Select(Key), selection.OwnAddresses.Select(Key), 0);
        Replace(_ipv6Destinations, _selection.Ipv6VirtualAddresses.Select(Key), selection.Ipv6VirtualAddresses.Select(Key), _vipFlags);
        Replace(_ipv6NatServers, _selection.Ipv6NatServers.Select(Key), selection.Ipv6NatServers.Select(Key), 0);
        Replace(_tunnelServers, _selection.TunnelServers.Select(TunnelKey), selection.TunnelServers.Select(TunnelKey), 0);
        _selection = selection;

        static byte[] TunnelKey((uint Address, byte Protocol, ushort Port) server) =>
            XdpSteeringProgram.TunnelServerKey(server.Address, server.Protocol, server.Port);
    }

    /// <summary>Frames of receive queue <paramref name="queue"/> that the program takes go to <paramref name="socket"/>.</summary>
    internal unsafe void Register(int queue, SafeDescriptorHandle socket)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(queue);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(queue, MaxQueues);
        int fd = socket.Fd;
        Check(Interop.BpfMapUpdateElement(_sockets.Fd, &queue, &fd, Interop.BPF_ANY), $"putting the AF_XDP socket of queue {queue} into the socket map");
    }

    public void Dispose()
    {
        _link.Dispose(); // detaches the program
        _program.Dispose();
        _tunnelServers.Dispose();
        _sockets.Dispose();
        _ipv6NatServers.Dispose();
        _ipv6Destinations.Dispose();
        _ownAddresses.Dispose();
        _natServers.Dispose();
        _destinations.Dispose();
    }

    private static byte[] Key(uint hostOrder)
    {
        var key = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(key, hostOrder);
        return key;
    }

    private static byte[] Key(UInt128 hostOrder)
    {
        var key = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(key, hostOrder);
        return key;
    }

    private static unsafe void Replace(SafeDescriptorHandle map, IEnumerable<byte[]> before, IEnumerable<byte[]> after, byte value)
    {
        var kept = after.Select(Convert.ToHexString).ToHashSet(StringComparer.Ordinal);
        foreach (byte[] key in after)
        {
            byte flags = value;
            fixed (byte* k = key)
            {
                Check(Interop.BpfMapUpdateElement(map.Fd, k, &flags, Interop.BPF_ANY), "adding an address to the steering maps");
            }
        }
        foreach (byte[] key in before.Where(k => !kept.Contains(Convert.ToHexString(k))))
        {
            fixed (byte* k = key)
            {
                _ = Interop.BpfMapDeleteElement(map.Fd, k); // absent already is as good as removed
            }
        }
    }

    private static SafeDescriptorHandle Track(List<SafeDescriptorHandle> opened, SafeDescriptorHandle handle)
    {
        opened.Add(handle);
        return handle;
    }

    private static SafeDescriptorHandle CreateMap(string name, int type, uint keySize, uint valueSize, uint entries) =>
        SafeDescriptorHandle.Own(Check(Interop.BpfMapCreate(type, name, keySize, valueSize, entries, 0), $"creating BPF map {name}"));

    private unsafe SafeDescriptorHandle LoadProgram(ulong[] instructions)
    {
        byte[] log = new byte[VerifierLogBytes];
        fixed (ulong* code = instructions)
        fixed (byte* logBuffer = log)
        {
            var options = new Interop.BpfProgLoadOptions { Size = (nuint)sizeof(Interop.BpfProgLoadOptions) };
            int fd = Interop.BpfProgLoad(Interop.BPF_PROG_TYPE_XDP, XdpSteeringProgram.ProgramName, "GPL", code, (nuint)instructions.Length, &options);
            if (fd < 0)
            {
                // Loaded again with the verifier's log, which says which instruction it refused and why.
                options.LogLevel = 1;
                options.LogSize = VerifierLogBytes;
                options.LogBuffer = logBuffer;
                fd = Interop.BpfProgLoad(Interop.BPF_PROG_TYPE_XDP, XdpSteeringProgram.ProgramName, "GPL", code, (nuint)instructions.Length, &options);
                if (fd < 0)
                {
                    string verifier = Encoding.ASCII.GetString(log).TrimEnd('\0').Trim();
                    throw new Win32Exception(-fd, $"loading the XDP steering program failed: {new Win32Exception(-fd).Message}\n{verifier}");
                }
            }
            InstructionCount = instructions.Length;
            return SafeDescriptorHandle.Own(fd);
        }
    }

    private static unsafe SafeDescriptorHandle Attach(SafeDescriptorHandle program, int interfaceIndex)
    {
        var options = new Interop.BpfLinkCreateOptions { Size = (nuint)sizeof(Interop.BpfLinkCreateOptions) };
        int fd = Interop.BpfLinkCreate(program.Fd, interfaceIndex, Interop.BPF_XDP, &options);
        return SafeDescriptorHandle.Own(Check(fd, $"attaching the XDP program to interface index {interfaceIndex} (another XDP program there?)"));
    }

    /// <summary>libbpf's convention: a descriptor or 0 on success, −errno on failure.</summary>
    private static int Check(int result, string what) =>
        result >= 0 ? result : throw new Win32Exception(-result, $"{what} failed: {new Win32Exception(-result).Message}");
}
