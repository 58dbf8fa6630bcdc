using System.Collections.Immutable;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>An engine over a small DR rule set, with the lab's addresses and neighbours.</summary>
internal sealed class EngineHarness
{
    public EngineHarness(VirtualServiceSpec service, int capacity = 1024, EngineOptions? options = null)
        : this(new RuleSetSpec([service]), capacity, options)
    {
    }

    public EngineHarness(RuleSetSpec spec, int capacity = 1024, EngineOptions? options = null)
    {
        Rules = RuleSet.Build(spec);
        Engine = new ForwardingEngine(options ?? new EngineOptions { LocalMac = Frames.UdrMac(Frames.BalancerMac) }, new ConnectionTable(capacity, seed: 42))
        {
            Rules = Rules,
            Neighbors = new NeighborTable(new Dictionary<uint, MacAddress>
            {
                [Frames.Address(Frames.Rs1)] = Frames.UdrMac(Frames.Rs1Mac),
                [Frames.Address(Frames.Rs2)] = Frames.UdrMac(Frames.Rs2Mac),
            }),
        };
    }

    public RuleSet Rules { get; }
    public ForwardingEngine Engine { get; }
    public byte[] Reply { get; } = new byte[ReplyBuilder.MaxReplyLength];
    public int ReplyLength { get; private set; }

    public FrameReason Process(byte[] frame, long nowMs = 1000, FrameFlags flags = FrameFlags.None)
    {
        FrameReason reason = Engine.ProcessWithReason(frame, flags, nowMs, Reply, out int length);
        ReplyLength = length;
        return reason;
    }

    public RealServer Server(string address) =>
        Rules.Services.SelectMany(s => s.Destinations).First(d => d.Address == Frames.Address(address));

    public static VirtualServiceSpec Service(string scheduler = "rr", ServiceProtocol protocol = ServiceProtocol.Tcp, ushort port = 80,
        int persistence = 0, uint netmask = 0xFFFFFFFF, params (string Address, int Weight)[] servers) =>
        new(protocol, Frames.Address(Frames.Vip), port, scheduler, PersistenceTimeout: persistence, PersistenceNetmask: netmask)
        {
            RealServers = servers.Select(s => new RealServerSpec(Frames.Address(s.Address), port, ForwardingMethod.Route, s.Weight)).ToImmutableArray(),
        };
}
