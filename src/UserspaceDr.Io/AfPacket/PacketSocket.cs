using System.ComponentModel;
using System.Runtime.InteropServices;
using UserspaceDr.Linux;

namespace UserspaceDr.Io.AfPacket;

/// <summary>Setup steps shared by the RX ring and the TX batch. Setup may throw; the per-frame paths never do.</summary>
internal static class PacketSocket
{
    internal static int InterfaceIndex(string interfaceName)
    {
        ArgumentException.ThrowIfNullOrEmpty(interfaceName);
        uint index = Interop.IfNameToIndex(interfaceName);
        if (index == 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), $"no interface '{interfaceName}' in this network namespace");
        }
        return (int)index;
    }

    /// <summary>
    /// Opens an AF_PACKET raw socket with protocol 0: such a socket receives nothing until bind names a protocol,
    /// so the ring, the filter and the options are all in place before the first frame arrives.
    /// </summary>
    internal static SafeDescriptorHandle Open()
    {
        SafeDescriptorHandle socket = Interop.Socket(Interop.AF_PACKET, Interop.SOCK_RAW | Interop.SOCK_CLOEXEC, 0);
        if (socket.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            socket.Dispose();
            throw new Win32Exception(errno, "socket(AF_PACKET, SOCK_RAW) failed (needs CAP_NET_RAW)");
        }
        return socket;
    }

    internal static void SetOption(SafeDescriptorHandle socket, int level, int option, int value, string what)
    {
        if (Interop.SetSockOpt(socket, level, option, value) != 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), $"setsockopt {what} failed");
        }
    }

    internal static unsafe void Bind(SafeDescriptorHandle socket, int interfaceIndex, ushort protocolBigEndian)
    {
        var address = new Interop.SockAddrLl
        {
            Family = Interop.AF_PACKET,
            ProtocolBigEndian = protocolBigEndian,
            InterfaceIndex = interfaceIndex,
        };
        if (Interop.Bind(socket, &address, (uint)sizeof(Interop.SockAddrLl)) != 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), $"bind to interface index {interfaceIndex} failed");
        }
    }
}
