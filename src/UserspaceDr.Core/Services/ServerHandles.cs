using System.Runtime.CompilerServices;

namespace UserspaceDr.Core.Services;

/// <summary>
/// The 64-bit handle a connection entry keeps for its real server instead of an object reference, so that an entry
/// holds no reference at all: the connection table can then live outside the garbage-collected heap, aligned to cache
/// lines and huge pages, and the collector never scans its hundreds of megabytes (nor does each new connection pay a
/// write barrier). A handle is an index into one process-wide table and the generation of that index; an index is
/// handed out again once its server is retired, with the next generation, so an entry that still holds an old handle
/// resolves to no server instead of to its successor. The low 32 bits are the index, the high 32 the generation; 0 is
/// never a handle (it stands for "no server", the entry's zeroed state).
/// </summary>
/// <remarks>
/// Process-wide, because an entry resolves its server from nothing but itself (<c>Connection.Dest</c>), the way the
/// runtime's own GC handles are process-wide. Reads are lock-free: a resolve reads the table's current array and
/// checks that the server found there is the one the handle names (its own <see cref="RealServer.Handle"/>); a
/// retired server's slot is cleared before its index can be handed out again. Registering and retiring take a lock
/// (once per server, from the control plane).
/// </remarks>
public static class ServerHandles
{
    private static readonly Lock Gate = new();
    private static readonly Stack<uint> Free = new();
    private static RealServer?[] _servers = new RealServer?[64];
    private static uint[] _generations = new uint[64];
    private static uint _next = 1; // index 0 is never used, so that handle 0 means none

    /// <summary>Gives <paramref name="server"/> its <see cref="RealServer.Handle"/>, valid until <see cref="Retire"/>.</summary>
    internal static void Register(RealServer server)
    {
        lock (Gate)
        {
            uint index = Free.Count > 0 ? Free.Pop() : _next++;
            if (index >= _servers.Length)
            {
                // Grown by copy and published whole: a reader holds either array, and both name the live servers.
                var servers = new RealServer?[_servers.Length * 2];
                Array.Copy(_servers, servers, _servers.Length);
                Array.Resize(ref _generations, servers.Length);
                Volatile.Write(ref _servers, servers);
            }
            uint generation = ++_generations[index];
            server.Handle = ((ulong)generation << 32) | index;
            Volatile.Write(ref _servers[index], server);
        }
    }

    /// <summary>
    /// The server gone for good (deleted, and no connection bound to it): its handle resolves to nothing from now on and
    /// its index may serve another server. Retiring twice, or a handle of 0, does nothing.
    /// </summary>
    internal static void Retire(ulong handle)
    {
        uint index = (uint)handle;
        lock (Gate)
        {
            RealServer?[] servers = _servers;
            if (index == 0 || index >= servers.Length || servers[index] is not RealServer server || server.Handle != handle)
            {
                return;
            }
            // The server forgets its handle too, so a reader that still holds an array from before a grow finds no match.
            server.Handle = 0;
            Volatile.Write(ref servers[index], null);
            Free.Push(index);
        }
    }

    /// <summary>The server <paramref name="handle"/> names, or null for 0 or a retired server's handle.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // once per frame, from the connection entry
    public static RealServer? Resolve(ulong handle)
    {
        RealServer?[] servers = Volatile.Read(ref _servers);
        uint index = (uint)handle;
        if (index >= (uint)servers.Length)
        {
            return null;
        }
        RealServer? server = servers[index];
        return server is not null && server.Handle == handle ? server : null;
    }
}
