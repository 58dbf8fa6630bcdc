using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal static partial class Libraries
    {
        // Debian's libbpf1 (the kernel's own BPF loader library). Its functions return a descriptor, or −errno.
        internal const string Libbpf = "libbpf.so.1";
    }

    // linux/bpf.h: enum bpf_map_type, enum bpf_prog_type, enum bpf_attach_type.
    internal const int BPF_MAP_TYPE_HASH = 1;
    internal const int BPF_MAP_TYPE_XSKMAP = 17;
    internal const int BPF_PROG_TYPE_XDP = 6;
    internal const int BPF_XDP = 37;

    /// <summary>bpf_map_update_elem: create or replace.</summary>
    internal const ulong BPF_ANY = 0;

    // linux/if_link.h: how an XDP program is attached.
    internal const uint XDP_FLAGS_SKB_MODE = 1u << 1;
    internal const uint XDP_FLAGS_DRV_MODE = 1u << 2;

    /// <summary>struct bpf_prog_load_opts (libbpf 1.1 bpf.h), up to its last field, log_buf.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct BpfProgLoadOptions
    {
        internal nuint Size;
        internal int Attempts;
        internal uint ExpectedAttachType;
        internal uint ProgramBtfFd;
        internal uint ProgramFlags;
        internal uint ProgramInterfaceIndex;
        internal uint KernelVersion;
        internal uint AttachBtfId;
        internal uint AttachProgramFd;
        internal uint AttachBtfObjectFd;
        internal int* FdArray;
        internal void* FunctionInfo;
        internal uint FunctionInfoCount;
        internal uint FunctionInfoRecordSize;
        internal void* LineInfo;
        internal uint LineInfoCount;
        internal uint LineInfoRecordSize;
        internal uint LogLevel;
        internal uint LogSize;
        internal byte* LogBuffer;
    }

    /// <summary>struct bpf_link_create_opts (libbpf 1.1 bpf.h): only its size and flags are used (XDP's mode).</summary>
    [StructLayout(LayoutKind.Sequential, Size = 64)]
    internal struct BpfLinkCreateOptions
    {
        internal nuint Size;
        internal uint Flags;
    }

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_create", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BpfMapCreate(int mapType, string name, uint keySize, uint valueSize, uint maxEntries, nint options);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_update_elem")]
    internal static unsafe partial int BpfMapUpdateElement(int mapFd, void* key, void* value, ulong flags);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_delete_elem")]
    internal static unsafe partial int BpfMapDeleteElement(int mapFd, void* key);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_prog_load", StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int BpfProgLoad(int programType, string name, string license, ulong* instructions, nuint instructionCount,
        BpfProgLoadOptions* options);

    /// <summary>
    /// Attaches a program by a BPF link: the attachment lives exactly as long as the link's descriptor, so it ends with
    /// the process however the process ends (a netlink attachment would outlive a crash).
    /// </summary>
    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_link_create")]
    internal static unsafe partial int BpfLinkCreate(int programFd, int targetFd, int attachType, BpfLinkCreateOptions* options);
}
