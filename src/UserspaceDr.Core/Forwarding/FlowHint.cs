using System.Runtime.CompilerServices;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// What <see cref="ForwardingEngine.Prefetch"/> read of a frame ahead of processing it: its flow key and the slot of the
/// service it is addressed to, under one rule set. The receive path hands it back with the frame
/// (<see cref="FrameBuffer.Hint"/>) so that its offload policy and the engine use the one reading instead of parsing the
/// headers again. A hint made under another rule set than the one in force is ignored; a frame without one is read as
/// usual. It holds no references (the rule set by <see cref="RuleSet.Generation"/>, the service by slot): a batch keeps
/// its hints in an array, and a struct with references would cost GC write barriers on every store.
/// </summary>
public readonly struct FlowHint
{
    internal FlowHint(in ConnectionKey<uint> key, int serviceSlot, int rulesGeneration, bool mayBeTunnelled)
    {
        Key = key;
        ServiceSlot = serviceSlot;
        RulesGeneration = rulesGeneration;
        MayBeTunnelled = mayBeTunnelled;
    }

    /// <summary>The client-side key: protocol, client address and port, VIP and port.</summary>
    internal ConnectionKey<uint> Key { get; }

    /// <summary>The service's slot in the rule set (<see cref="RuleSet.ServiceAt"/>); -1 when the frame is for none.</summary>
    internal int ServiceSlot { get; }

    /// <summary>The <see cref="RuleSet.Generation"/> the service was found in; 0 when the frame is not TCP/UDP with ports (no hint).</summary>
    internal int RulesGeneration { get; }

    /// <summary>The frame is an IPv4 TCP/UDP first fragment (or unfragmented) and its key was read.</summary>
    public bool HasKey => RulesGeneration != 0;

    /// <summary>
    /// TCP/UDP to a service with an IP-in-IP server: a receive path cuts a GSO super-frame in software before the
    /// engine only then (an encapsulated super-frame cannot be handed to the kernel to segment).
    /// </summary>
    public bool MayBeTunnelled { get; }

    /// <summary>The service this hint found for <paramref name="key"/> under <paramref name="rules"/>; false when it cannot tell.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryGetService(RuleSet rules, in ConnectionKey<uint> key, out VirtualService? service)
    {
        if (RulesGeneration != rules.Generation || !SameFlow(Key, key))
        {
            service = null;
            return false;
        }
        service = ServiceSlot >= 0 ? rules.ServiceAt(ServiceSlot) : null;
        return true;
    }

    // Field by field: the record struct's Equals is a call per frame, and a client-side key is never a template or link.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool SameFlow(in ConnectionKey<uint> a, in ConnectionKey<uint> b) =>
        a.ClientAddress == b.ClientAddress && a.ClientPort == b.ClientPort && a.VirtualAddress == b.VirtualAddress &&
        a.VirtualPort == b.VirtualPort && a.Protocol == b.Protocol && a.Template == b.Template && a.ReplyLink == b.ReplyLink;
}
