namespace UserspaceDr.Core.Services;

/// <summary>Transport protocol of a virtual service (values are IP protocol numbers).</summary>
public enum ServiceProtocol : byte
{
    Tcp = 6,
    Udp = 17,
}

/// <summary>How a real server is reached; values follow IPVS's IP_VS_CONN_F_FWD_MASK numbering.</summary>
public enum ForwardingMethod : byte
{
    /// <summary>NAT (-m), "Masq".</summary>
    Masquerade = 0,
    /// <summary>Local delivery, "Local" (never configured directly; saved as -g).</summary>
    Local = 1,
    /// <summary>IP-in-IP (-i), "Tunnel".</summary>
    Tunnel = 2,
    /// <summary>Direct routing (-g, the default), "Route".</summary>
    Route = 3,
}

/// <summary>Scheduler flags as IPVS defines them (IP_VS_SVC_F_SCHED1..3).</summary>
[Flags]
public enum SchedulerFlags
{
    None = 0,
    /// <summary>flag-1: sh-fallback / mh-fallback.</summary>
    Flag1 = 0x08,
    /// <summary>flag-2: sh-port / mh-port.</summary>
    Flag2 = 0x10,
    /// <summary>flag-3.</summary>
    Flag3 = 0x20,
}
