using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// What <see cref="ForwardingEngine.Prefetch"/> read of a frame ahead of processing it: its flow key and the service
/// it is addressed to, under one rule set. The receive path hands it back with the frame (<see cref="FrameBuffer.Hint"/>)
/// so that its offload policy and the engine use the one reading instead of parsing the headers again. A hint made
/// under another rule set than the one in force is ignored; a frame without one is read as usual.
/// </summary>
public readonly struct FlowHint
{
    internal FlowHint(in ConnectionKey key, VirtualService? service, RuleSet rules)
    {
        Key = key;
        Service = service;
        Rules = rules;
    }

    /// <summary>The client-side key: protocol, client address and port, VIP and port.</summary>
    internal ConnectionKey Key { get; }

    /// <summary>The service the frame is addressed to; null when none.</summary>
    internal VirtualService? Service { get; }

    /// <summary>The rule set <see cref="Service"/> was found in; null when the frame is not TCP/UDP with ports (no hint).</summary>
    internal RuleSet? Rules { get; }

    /// <summary>The frame is an IPv4 TCP/UDP first fragment (or unfragmented) and its key was read.</summary>
    public bool HasKey => Rules is not null;

    /// <summary>
    /// TCP/UDP to a service with an IP-in-IP server: a receive path cuts a GSO super-frame in software before the
    /// engine only then (an encapsulated super-frame cannot be handed to the kernel to segment).
    /// </summary>
    public bool MayBeTunnelled
    {
        get
        {
            if (Service is null || Rules is null || !Rules.HasTunnel)
            {
                return false;
            }
            foreach (RealServer server in Service.Destinations)
            {
                if (server.Method == ForwardingMethod.Tunnel)
                {
                    return true;
                }
            }
            return false;
        }
    }
}
