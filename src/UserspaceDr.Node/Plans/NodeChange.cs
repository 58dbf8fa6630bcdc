using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Node.Plans;

/// <summary>
/// One change to a host, with what it was before: enough to make it (<see cref="Apply"/>) and to take it back
/// (<see cref="Revert"/>). A plan is a list of these; it is printed for --dry-run and applied in order.
/// </summary>
public abstract record NodeChange
{
    /// <summary>One line for the operator: "sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1".</summary>
    public abstract string Describe();

    public abstract void Apply(IHostSystem host);

    public abstract void Revert(IHostSystem host);

    public sealed override string ToString() => Describe();
}

/// <summary>Sets a sysctl from <see cref="Previous"/> to <see cref="Value"/>.</summary>
public sealed record SysctlChange(SysctlKey Key, string Previous, string Value) : NodeChange
{
    public override string Describe() => $"sysctl {Key.Name}: {Previous} -> {Value}";

    public override void Apply(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        host.WriteSysctl(Key, Value);
    }

    public override void Revert(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        host.WriteSysctl(Key, Previous);
    }
}

/// <summary>Adds an address (a VIP as /32 or /128 on lo).</summary>
public sealed record AddressAddChange(string Device, InetAddress Address, int PrefixLength) : NodeChange
{
    public override string Describe() => $"address add {Address}/{PrefixLength} dev {Device}";

    public override void Apply(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        host.AddAddress(Device, Address, PrefixLength);
    }

    public override void Revert(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        host.DeleteAddress(Device, Address, PrefixLength);
    }
}

/// <summary>Brings a link up (<see cref="Up"/>) or down; reverting does the opposite.</summary>
public sealed record LinkStateChange(string Device, bool Up) : NodeChange
{
    public override string Describe() => $"link set {Device} {(Up ? "up" : "down")}";

    public override void Apply(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        host.SetLinkUp(Device, Up);
    }

    public override void Revert(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        host.SetLinkUp(Device, !Up);
    }
}

/// <summary>Removes an address that setup added (teardown).</summary>
public sealed record AddressDeleteChange(string Device, InetAddress Address, int PrefixLength) : NodeChange
{
    public override string Describe() => $"address del {Address}/{PrefixLength} dev {Device}";

    public override void Apply(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        host.DeleteAddress(Device, Address, PrefixLength);
    }

    public override void Revert(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        host.AddAddress(Device, Address, PrefixLength);
    }
}

/// <summary>Writes a file whole; <see cref="Previous"/> is its earlier text, null when it did not exist.</summary>
public sealed record FileWriteChange(string Path, string? Previous, string Content) : NodeChange
{
    public override string Describe() => Previous == null ? $"file create {Path}" : $"file rewrite {Path}";

    public override void Apply(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        host.WriteFile(Path, Content);
    }

    public override void Revert(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (Previous == null)
        {
            host.DeleteFile(Path);
        }
        else
        {
            host.WriteFile(Path, Previous);
        }
    }
}

/// <summary>Deletes a file that setup created (teardown); <see cref="Previous"/> is its text, to put back on rollback.</summary>
public sealed record FileDeleteChange(string Path, string Previous) : NodeChange
{
    public override string Describe() => $"file delete {Path}";

    public override void Apply(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        host.DeleteFile(Path);
    }

    public override void Revert(IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(host);
        host.WriteFile(Path, Previous);
    }
}
