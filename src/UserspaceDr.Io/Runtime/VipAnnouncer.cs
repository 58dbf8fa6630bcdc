using Microsoft.Extensions.Logging;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Io.Runtime;

/// <summary>What <c>udr run --announce VIP=DEVICE</c> asks for: the VIP, and the device a routing daemon routes it by.</summary>
public sealed record VipAnnouncement(InetAddress Vip, string Device);

/// <summary>
/// Tells a routing daemon (BIRD) whether each announced VIP can be served, by whether a device of udr's own exists
/// (<see cref="LifelineDevice"/>): it exists while the data plane runs, is not a standby backup, and at least one
/// service of the VIP has a real server of weight above 0 in the rules in force. Those rules already carry the health
/// checks' verdicts (a failed server removed or at weight 0) and keepalived's quorum (a service that lost it keeps only
/// its sorry server, which still serves, so the VIP stays announced while one is configured). Stopping, or dying,
/// removes the devices, so the routes are withdrawn without udr's help.
/// </summary>
public sealed class VipAnnouncer : IDisposable
{
    private readonly VipAnnouncement[] _announcements;
    private readonly LifelineDevice?[] _devices;
    private readonly ILogger _log;

    public VipAnnouncer(IReadOnlyList<VipAnnouncement> announcements, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(announcements);
        _announcements = [.. announcements];
        _devices = new LifelineDevice?[_announcements.Length];
        _log = log;
    }

    /// <summary>Whether <paramref name="vip"/> can be served under <paramref name="rules"/>.</summary>
    public static bool Servable(RuleSet rules, InetAddress vip, bool standby)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return !standby && rules.Services.Any(s => s.Address == vip && s.Destinations.Any(d => d.Weight > 0 && !d.Removed));
    }

    /// <summary>
    /// Creates or removes each VIP's device as <paramref name="rules"/> say, logging each change. A device that cannot
    /// be created is logged and tried again at the next update: the VIP stays withdrawn, the safe side.
    /// </summary>
    public void Update(RuleSet rules, bool standby)
    {
        for (int i = 0; i < _announcements.Length; i++)
        {
            VipAnnouncement announcement = _announcements[i];
            bool servable = Servable(rules, announcement.Vip, standby);
            if (servable == (_devices[i] is not null))
            {
                continue;
            }
            if (servable)
            {
                try
                {
                    _devices[i] = LifelineDevice.Create(announcement.Device);
                }
                catch (HostException e)
                {
                    Log.AnnouncementFailed(_log, announcement.Vip.ToString(), e.Message);
                    continue;
                }
            }
            else
            {
                _devices[i]!.Dispose();
                _devices[i] = null;
            }
            Log.Announcement(_log, announcement.Vip.ToString(), servable ? "announced" : "withdrawn", announcement.Device,
                servable ? "created" : standby ? "removed: standby backup" : "removed: no real server with weight above 0");
        }
    }

    /// <summary>Removes the devices: every route through them is withdrawn.</summary>
    public void Dispose()
    {
        for (int i = 0; i < _devices.Length; i++)
        {
            _devices[i]?.Dispose();
            _devices[i] = null;
        }
    }
}
