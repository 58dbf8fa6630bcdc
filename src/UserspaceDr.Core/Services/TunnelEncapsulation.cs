namespace UserspaceDr.Core.Services;

/// <summary>--tun-type (IP_VS_CONN_F_TUNNEL_TYPE_*): what a tunnel (-i) server's packets are wrapped in.</summary>
public enum TunnelType : byte
{
    Ipip = 0,
    Gue = 1,
    Gre = 2,
}

/// <summary>
/// --tun-nocsum / --tun-csum / --tun-remcsum (IP_VS_TUNNEL_ENCAP_FLAG_*); at most one is legal per tunnel type,
/// and no checksum is what the kernel assumes when none is given.
/// </summary>
public enum TunnelChecksum : byte
{
    NoChecksum = 0,
    Checksum = 1,
    RemoteChecksum = 2,
}

/// <summary>
/// How a tunnel server's packets are encapsulated after the outer IP header (ipvs_gue_encap, ipvs_gre_encap): nothing
/// for IP-in-IP; UDP to <see cref="Port"/> and a GUE version 0 header; or a GRE header, 8 bytes with its checksum.
/// </summary>
public readonly record struct TunnelEncapsulation(TunnelType Type = TunnelType.Ipip, ushort Port = 0, TunnelChecksum Checksum = TunnelChecksum.NoChecksum)
{
    public const int UdpHeaderLength = 8;
    public const int GueHeaderLength = 4;
    public const int GreHeaderLength = 4;
    public const int GreChecksumLength = 4;

    /// <summary>The bytes between the outer IP header and the inner packet.</summary>
    public int HeaderLength => Type switch
    {
        TunnelType.Gue => UdpHeaderLength + GueHeaderLength,
        TunnelType.Gre => Checksum == TunnelChecksum.NoChecksum ? GreHeaderLength : GreHeaderLength + GreChecksumLength,
        _ => 0,
    };

    /// <summary>As ipvsadm's --tun-info column shows it: ipip, gue:PORT:-c|+c|r+c, gre:-c|+c.</summary>
    public override string ToString() => Type switch
    {
        TunnelType.Gue => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"gue:{Port}:{ChecksumInfo}"),
        TunnelType.Gre => $"gre:{ChecksumInfo}",
        _ => "ipip",
    };

    private string ChecksumInfo => Checksum switch
    {
        TunnelChecksum.Checksum => "+c",
        TunnelChecksum.RemoteChecksum => "r+c",
        _ => "-c",
    };
}
