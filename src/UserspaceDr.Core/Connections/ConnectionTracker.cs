using System.Runtime.CompilerServices;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Core.Connections;

/// <summary>
/// Connection tracking as IPVS's ip_vs_conn.c and ip_vs_core.c decide it: find a live entry, decide whether an
/// existing one is reused or expired (conn_reuse_mode, expire_nodest_conn), schedule a new connection (with its
/// persistence template), move TCP through its states and arm the entry's timer. It owns nothing but policy: the
/// table and the counters belong to the worker whose engine holds this tracker. Not thread-safe, by design.
/// </summary>
public sealed class ConnectionTracker<TAddress>
    where TAddress : unmanaged, IEquatable<TAddress>
{
    private readonly EngineOptions _options;
    private readonly WorkerCounters _counters;

    public ConnectionTracker(ConnectionTable<TAddress> table, EngineOptions options, WorkerCounters counters)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(counters);
        Table = table;
        _options = options;
        _counters = counters;
        _pressureCount = (int)((long)table.Capacity * options.DefenseThresholdPercent / 100);
    }

    private readonly int _pressureCount;

    /// <summary>How many slots drop_entry looks at for a half-open entry: a full table is two thirds entries.</summary>
    private const int DropEntryScan = 64;

    /// <summary>secure_tcp is on: always (3), or (1, 2) while the table is fuller than the threshold.</summary>
    private bool SecureTcpOn => _options.SecureTcp == 3 || (_options.SecureTcp != 0 && Table.Count > _pressureCount);

    public ConnectionTable<TAddress> Table { get; }

    /// <summary>The timeouts in force; the engine sets them from its snapshot.</summary>
    public Timeouts Timeouts { get; set; } = Timeouts.Default;

    /// <summary>
    /// Finds an entry that has not expired. The sweep removes expired entries only when it reaches them; an entry whose
    /// time has passed is gone for IPVS (its timer fired), so it is removed here and not matched. A template that
    /// still controls connections is the exception: the kernel re-arms it, and it keeps serving new connections.
    /// </summary>
    public int FindLive(in ConnectionKey<TAddress> key, long nowMs)
    {
        ConnectionTable<TAddress> table = Table;
        int slot = table.Find(key);
        if (slot >= 0 && table.At(slot).ExpiresAtMs <= nowMs)
        {
            ref Connection<TAddress> entry = ref table.At(slot);
            if (entry.IsTemplate && entry.ControlCount > 0)
            {
                entry.ExpiresAtMs = nowMs + (Timeouts.TemplateRecheckSeconds * 1000L);
                return slot;
            }
            table.Remove(slot);
            return -1;
        }
        return slot;
    }

    /// <summary>
    /// The tracking step of ip_vs_in for a TCP or UDP packet of <paramref name="service"/> (either family): finds its live
    /// entry, reuses or expires it (<see cref="CheckExistingEntry"/>), or schedules a new connection when the packet may
    /// start one (a SYN; any non-RST under sloppy_tcp; any UDP datagram), then moves TCP state and re-arms the timer.
    /// <see cref="FrameReason.Forwarded"/> with the entry's slot and its <paramref name="server"/> (resolved once here for
    /// the whole frame; null when the entry has none), or with slot -1 and the server of a one-packet scheduling; otherwise
    /// why not (the caller answers <see cref="FrameReason.IcmpPortUnreachable"/> in its family).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FrameReason Track(VirtualService service, in ConnectionKey<TAddress> key, byte tcpFlags, long nowMs, out int slot, out RealServer? server)
    {
        byte protocol = key.Protocol;
        server = null;
        slot = FindLive(key, nowMs);
        bool isSyn = (tcpFlags & (TcpFlags.Syn | TcpFlags.Rst)) == TcpFlags.Syn;
        if (slot >= 0)
        {
            slot = CheckExistingEntry(slot, protocol, isSyn, out server);
        }
        if (slot < 0)
        {
            // No entry: only a SYN (any non-RST with sloppy_tcp) or a UDP datagram starts a connection (tcp_conn_schedule).
            if (protocol == IpProtocol.Tcp && !isSyn && !(_options.SloppyTcp && (tcpFlags & TcpFlags.Rst) == 0))
            {
                return FrameReason.TcpNotSyn;
            }
            return Schedule(service, key, tcpFlags, nowMs, out slot, out server);
        }
        ref Connection<TAddress> entry = ref Table.At(slot);
        if (protocol == IpProtocol.Tcp)
        {
            AdvanceTcpState(ref entry, tcpFlags, reply: false);
        }
        Arm(ref entry, nowMs);
        return FrameReason.Forwarded;
    }

    /// <summary>
    /// Applies conn_reuse_mode and expire_nodest_conn to an existing entry; returns the slot, or -1 when the entry
    /// was expired so that the packet is scheduled afresh. <paramref name="dest"/>: the entry's server.
    /// </summary>
    public int CheckExistingEntry(int slot, byte protocol, bool isSyn, out RealServer? dest)
    {
        ref Connection<TAddress> entry = ref Table.At(slot);
        dest = entry.Dest;
        bool reschedule = false;
        if (dest is not null && dest.Removed)
        {
            // A deleted server: drop (0), or forget the entry and treat the packet as new (1).
            if (!_options.ExpireNoDestinationConnection)
            {
                return slot; // the transmit stage turns a removed destination into DestinationRemoved
            }
            reschedule = true;
        }
        else if (isSyn && _options.ConnectionReuseMode != 0)
        {
            if (_options.ExpireNoDestinationConnection && dest is not null && dest.Weight == 0)
            {
                reschedule = true;
            }
            else if ((entry.Flags & ConnectionFlags.Controlled) == 0 && protocol == IpProtocol.Tcp)
            {
                // is_new_conn_expected: the old connection is over.
                reschedule = entry.State is TcpState.TimeWait or TcpState.Close ||
                    ((_options.ConnectionReuseMode & 2) != 0 && entry.State == TcpState.FinWait && (entry.Flags & ConnectionFlags.NoOutput) != 0);
            }
        }
        if (!reschedule)
        {
            return slot;
        }
        Table.Remove(slot);
        return -1;
    }

    /// <summary>
    /// ip_vs_schedule (and ip_vs_sched_persist for a persistent service): picks the real server for a new connection
    /// and enters it in the table, with its reply link for NAT. <see cref="FrameReason.Forwarded"/> with a slot and its
    /// <paramref name="server"/>, or with slot -1 and the server for one-packet scheduling (-o: no entry); otherwise why
    /// it was refused (<see cref="FrameReason.IcmpPortUnreachable"/>: no server available, as IPVS answers).
    /// </summary>
    public FrameReason Schedule(VirtualService service, in ConnectionKey<TAddress> key, byte tcpFlags, long nowMs, out int slot, out RealServer? server)
    {
        slot = -1;
        server = null;
        ConnectionTable<TAddress> table = Table;
        byte protocol = key.Protocol;
        // drop_entry: room for what this connection may need (template, connection, NAT reply link) before any slot is
        // held, since a removal may shift entries.
        if (table.Count + 3 > table.Capacity && _options.DropEntry)
        {
            int needed = 1 + (service.Persistent ? 1 : 0) + (service.Destinations.Any(d => d.Method == ForwardingMethod.Masquerade) ? 1 : 0);
            if (table.Count + needed > table.Capacity)
            {
                _counters.DropEntryEvicted += table.EvictHalfOpen(key, table.Count + needed - table.Capacity, DropEntryScan);
            }
        }
        RealServer? dest;
        ushort templatePort = service.Port;
        TAddress templateClient = AddressBits.Mask(key.ClientAddress, service.PersistenceNetmask);
        int templateSlot = -1;
        if (service.Persistent)
        {
            // ip_vs_sched_persist: reuse the client network's server while its template is valid. A firewall-mark
            // service's template stands for every protocol and port the mark covers: <IPPROTO_IP, client, 0, mark, 0>.
            var templateKey = service.FirewallMark != 0
                ? TemplateKeys.ForMark(templateClient, service.FirewallMark)
                : new ConnectionKey<TAddress>(protocol, templateClient, 0, key.VirtualAddress, templatePort, Template: true);
            templateSlot = FindLive(templateKey, nowMs);
            if (templateSlot >= 0 && TemplateValid(table.At(templateSlot).Dest))
            {
                dest = table.At(templateSlot).Dest;
            }
            else
            {
                dest = service.Scheduler.Pick(new SchedulingKey(AddressBits.Fold(key.ClientAddress), key.ClientPort, AddressBits.Fold(key.VirtualAddress), key.VirtualPort));
                if (dest is null)
                {
                    return FrameReason.IcmpPortUnreachable;
                }
                if (templateSlot < 0)
                {
                    if (table.Count + 2 > table.Capacity)
                    {
                        return FrameReason.ConnectionTableFull;
                    }
                    templateSlot = table.TryInsert(templateKey);
                    table.At(templateSlot).Flags |= ConnectionFlags.NoOutput;
                }
                else
                {
                    // An invalid template (server deleted or quiesced): the kernel unhashes it and makes a new one.
                    // Re-pointing it is the same for new connections, and the ones it controls keep their server.
                    table.At(templateSlot).Dest?.UnbindConnection(active: false, template: true);
                }
                ref Connection<TAddress> template = ref table.At(templateSlot);
                template.Dest = dest;
                template.DestAddress = SameFamily(dest.Address);
                template.DestPort = dest.Port;
                template.Method = dest.Method;
                dest.BindConnection(active: false, template: true);
            }
            // Using a template re-arms it for the full persistence timeout.
            table.At(templateSlot).ExpiresAtMs = nowMs + (service.PersistenceTimeout * 1000L);
        }
        else
        {
            dest = service.Scheduler.Pick(new SchedulingKey(AddressBits.Fold(key.ClientAddress), key.ClientPort, AddressBits.Fold(key.VirtualAddress), key.VirtualPort));
            if (dest is null)
            {
                return FrameReason.IcmpPortUnreachable;
            }
        }

        ref TrafficCounters traffic = ref _counters.For(dest!);
        traffic.Connections++;
        if (service.OnePacket && protocol == IpProtocol.Udp)
        {
            server = dest;
            traffic.InPackets++;
            return FrameReason.Forwarded;
        }

        bool nat = dest!.Method == ForwardingMethod.Masquerade;
        slot = nat && table.Count + 2 > table.Capacity ? -1 : table.TryInsert(key);
        if (slot < 0)
        {
            traffic.Connections--;
            return FrameReason.ConnectionTableFull;
        }
        ref Connection<TAddress> entry = ref table.At(slot);
        entry.Dest = dest;
        entry.DestAddress = SameFamily(dest!.Address);
        // A port-0 (all ports) persistent service keeps the packet's port; otherwise the server's.
        entry.DestPort = dest.Port != 0 ? dest.Port : key.VirtualPort;
        entry.Method = dest.Method;
        entry.State = TcpState.None;
        entry.Flags |= ConnectionFlags.Inactive | (dest.Method != ForwardingMethod.Masquerade ? ConnectionFlags.NoOutput : 0);
        if (templateSlot >= 0)
        {
            entry.Flags |= ConnectionFlags.Controlled;
            entry.TemplateClientAddress = templateClient;
            entry.TemplateVirtualPort = templatePort;
            entry.FirewallMark = service.FirewallMark;
            // The template slot is still valid: the insert above never moves existing entries.
            table.At(templateSlot).ControlCount++;
        }
        dest.BindConnection(active: false, template: false);
        if (protocol == IpProtocol.Tcp)
        {
            AdvanceTcpState(ref entry, tcpFlags, reply: false);
        }
        Arm(ref entry, nowMs);
        if (entry.State == TcpState.SynRecv && protocol == IpProtocol.Tcp && SecureTcpOn)
        {
            _counters.SecureTcpShortSynRecv++;
        }
        if (nat)
        {
            InsertReplyLink(in entry);
        }
        server = dest;
        return FrameReason.Forwarded;
    }

    /// <summary>
    /// A master's part of connection sync, for one packet from the client of <paramref name="entry"/> (ip_vs_in calling
    /// ip_vs_sync_conn, ip_vs_sync_conn_needed with sync_threshold "3 50" and no refresh period): TCP is synced only in
    /// ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT and TIME_WAIT, at once on a change to one of those other than
    /// ESTABLISHED, else on the 3rd packet and every 50th after; UDP on the same count. A synced connection's
    /// persistence template is synced with it.
    /// </summary>
    public void CountForSync(ref Connection<TAddress> entry, SyncOutbox outbox, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(outbox);
        int packets = entry.SyncPackets + 1;
        packets = packets == SyncOutbox.Period ? 0 : packets;
        entry.SyncPackets = (byte)packets;
        if (entry.Protocol == IpProtocol.Tcp)
        {
            if (entry.State is not (TcpState.Established or TcpState.FinWait or TcpState.Close or TcpState.CloseWait or TcpState.TimeWait))
            {
                return;
            }
            bool force = entry.State != entry.SyncedState && entry.State != TcpState.Established;
            if (!force && packets != SyncOutbox.Threshold)
            {
                return;
            }
        }
        else if (packets != SyncOutbox.Threshold)
        {
            return;
        }
        entry.SyncedState = entry.State;
        outbox.Post(ToSynced(entry, (uint)TimeoutOf(entry)));
        if ((entry.Flags & ConnectionFlags.Controlled) != 0)
        {
            int template = Table.Find(entry.ControllingTemplateKey);
            if (template >= 0)
            {
                ref Connection<TAddress> controlling = ref Table.At(template);
                outbox.Post(ToSynced(controlling, (uint)Math.Max(1, (controlling.ExpiresAtMs - nowMs + 999) / 1000)));
            }
        }
    }

    private static SyncedConnection ToSynced(in Connection<TAddress> entry, uint timeoutSeconds) =>
        new(entry.Protocol, entry.IsTemplate, entry.IsInactive, (ushort)entry.State, AddressBits.ToInet(entry.ClientAddress), entry.ClientPort,
            AddressBits.ToInet(entry.VirtualAddress), entry.VirtualPort, entry.Dest?.Address ?? AddressBits.ToInet(entry.DestAddress), entry.DestPort, timeoutSeconds)
        {
            Method = entry.Method,
            // A firewall-mark service's template is the one with protocol IPPROTO_IP; it holds the mark as its address.
            FirewallMark = entry.IsTemplate ? (entry.Protocol == 0 ? AddressBits.ToMark(entry.VirtualAddress) : 0) : entry.FirewallMark,
        };

    /// <summary>
    /// A server's address in this table's family. A server of the other family (IPVS allows it for tunnel servers only)
    /// has none here: its entries keep 0 and the transmit stage reads the address from the server itself.
    /// </summary>
    private static TAddress SameFamily(InetAddress address) => AddressBits.TryFrom(address, out TAddress value) ? value : default;

    /// <summary>Timeout of a synced template that came without one (a version 0 master's): the kernel's 3 minutes.</summary>
    private const int SyncedTemplateTimeoutSeconds = 180;

    /// <summary>
    /// A backup's part of connection sync (ip_vs_proc_conn): enters <paramref name="synced"/> in this worker's table,
    /// bound to the same real server (found by address and port in its service under <paramref name="rules"/>), with
    /// the state and timeout the master sent, and the server's active/inactive counts moved as the entry's flag says,
    /// so that lc and wlc decide as the master would after a takeover. An entry bound to another server is expired and
    /// made anew, unless the message is an inactive one for a connection already replaced (then it is stale).
    /// </summary>
    public SyncApplyOutcome ApplySync(RuleSet rules, in SyncedConnection synced, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(rules);
        if (!synced.IsTemplate && synced.Protocol == IpProtocol.Tcp && synced.State > (ushort)TcpState.SynAck)
        {
            return SyncApplyOutcome.InvalidState;
        }
        if (!AddressBits.TryFrom(synced.ClientAddress, out TAddress client) || !AddressBits.TryFrom(synced.VirtualAddress, out TAddress vip))
        {
            return SyncApplyOutcome.UnknownService; // another family's table takes it
        }
        // ip_vs_find_dest: the service of the mark when the master sent one, else of the protocol, address and port.
        VirtualService? service = synced.FirewallMark != 0
            ? rules.FindMarked(AddressBits.Family<TAddress>(), synced.FirewallMark)
            : rules.Find(synced.Protocol, synced.VirtualAddress, synced.VirtualPort);
        RealServer? dest = null;
        if (service is null)
        {
            return SyncApplyOutcome.UnknownService;
        }
        foreach (RealServer candidate in service.Destinations)
        {
            if (candidate.Address == synced.DestAddress && (candidate.Port == synced.DestPort || candidate.Port == 0))
            {
                dest = candidate;
                break;
            }
        }
        if (dest is null)
        {
            return SyncApplyOutcome.UnknownServer;
        }

        ConnectionTable<TAddress> table = Table;
        var key = new ConnectionKey<TAddress>(synced.Protocol, client, synced.ClientPort, vip, synced.VirtualPort, Template: synced.IsTemplate);
        int slot = FindLive(key, nowMs);
        SyncApplyOutcome outcome = SyncApplyOutcome.Updated;
        if (slot >= 0 && !synced.IsTemplate &&
            (table.At(slot).Dest?.Address != synced.DestAddress || table.At(slot).DestPort != synced.DestPort))
        {
            if (synced.IsInactive)
            {
                return SyncApplyOutcome.Stale;
            }
            table.Remove(slot);
            slot = -1;
            outcome = SyncApplyOutcome.Replaced;
        }

        if (slot < 0)
        {
            bool nat = dest.Method == ForwardingMethod.Masquerade && !synced.IsTemplate;
            slot = nat && table.Count + 2 > table.Capacity ? -1 : table.TryInsert(key);
            if (slot < 0)
            {
                return SyncApplyOutcome.TableFull;
            }
            ref Connection<TAddress> created = ref table.At(slot);
            created.Dest = dest;
            created.DestAddress = SameFamily(dest.Address);
            created.DestPort = synced.DestPort;
            created.Method = dest.Method;
            if (!synced.IsTemplate)
            {
                created.FirewallMark = synced.FirewallMark;
            }
            created.Flags |= (synced.IsInactive || synced.IsTemplate ? ConnectionFlags.Inactive : 0) |
                (dest.Method != ForwardingMethod.Masquerade || synced.IsTemplate ? ConnectionFlags.NoOutput : 0);
            dest.BindConnection(active: !synced.IsInactive && !synced.IsTemplate, template: synced.IsTemplate);
            if (nat)
            {
                InsertReplyLink(in created);
            }
            outcome = outcome == SyncApplyOutcome.Replaced ? outcome : SyncApplyOutcome.Created;
        }
        else if (!synced.IsTemplate && table.At(slot).IsInactive != synced.IsInactive)
        {
            ref Connection<TAddress> updated = ref table.At(slot);
            updated.Dest?.MoveConnection(toActive: !synced.IsInactive);
            updated.Flags ^= ConnectionFlags.Inactive;
        }

        ref Connection<TAddress> entry = ref table.At(slot);
        if (!synced.IsTemplate && synced.Protocol == IpProtocol.Tcp)
        {
            entry.State = (TcpState)synced.State;
        }
        long timeoutSeconds = synced.TimeoutSeconds != 0 ? synced.TimeoutSeconds
            : synced.IsTemplate ? SyncedTemplateTimeoutSeconds : TimeoutOf(entry);
        entry.ExpiresAtMs = nowMs + (timeoutSeconds * 1000L);
        return outcome;
    }

    /// <summary>ip_vs_check_template: the server must still be in its service (and not quiesced, if so configured).</summary>
    private bool TemplateValid(RealServer? dest) =>
        dest is not null && !dest.Removed && !(_options.ExpireQuiescentTemplate && dest.Weight == 0);

    /// <summary>
    /// set_tcp_state: the table by direction (a reply clears NOOUTPUT; without one, DR/TUN use INPUT_ONLY), counters
    /// moved between active and inactive, and a persistent connection that becomes ESTABLISHED marks its template
    /// ASSURED (ip_vs_control_assure_ct): a template confirmed by a real handshake, which drop_entry never takes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AdvanceTcpState(ref Connection<TAddress> entry, byte tcpFlags, bool reply)
    {
        if (AdvanceTcpStateOf(ref entry, tcpFlags, reply) && (entry.Flags & ConnectionFlags.Controlled) != 0)
        {
            AssureTemplate(entry);
        }
    }

    private void AssureTemplate(in Connection<TAddress> entry)
    {
        ConnectionTable<TAddress> table = Table;
        int template = table.Find(entry.ControllingTemplateKey);
        if (template >= 0)
        {
            table.At(template).Flags |= ConnectionFlags.Assured;
        }
    }

    /// <summary>The state change alone; true when the entry has just entered ESTABLISHED.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool AdvanceTcpStateOf(ref Connection<TAddress> entry, byte tcpFlags, bool reply)
    {
        PacketDirection direction;
        if (reply)
        {
            entry.Flags &= ~ConnectionFlags.NoOutput;
            direction = PacketDirection.Output;
        }
        else
        {
            direction = (entry.Flags & ConnectionFlags.NoOutput) != 0 ? PacketDirection.InputOnly : PacketDirection.Input;
        }
        TcpState next = TcpStateMachine.Next(entry.State, direction, tcpFlags);
        if (next == entry.State)
        {
            return false;
        }
        bool active = TcpStateMachine.IsActive(next);
        if (active == entry.IsInactive)
        {
            entry.Dest?.MoveConnection(toActive: active);
            entry.Flags ^= ConnectionFlags.Inactive;
        }
        entry.State = next;
        return next == TcpState.Established;
    }

    /// <summary>
    /// One step of the expiry sweep; while secure_tcp is on, half-open entries armed before it turned on are cut to its
    /// short SYN_RECV timeout as the sweep passes them, so a flood leaves nothing behind seconds after it ends.
    /// </summary>
    public int Expire(long nowMs, int budget) =>
        Table.Expire(nowMs, budget, SecureTcpOn ? nowMs + (Timeouts.SynRecvDefenseSeconds * 1000L) : long.MaxValue);

    /// <summary>(Re)arms an entry's timer for the timeout of its protocol and state.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Arm(ref Connection<TAddress> entry, long nowMs) => entry.ExpiresAtMs = nowMs + (TimeoutOf(entry) * 1000L);

    private int TimeoutOf(in Connection<TAddress> entry) =>
        entry.Protocol != IpProtocol.Tcp ? Timeouts.Udp
        : entry.State == TcpState.SynRecv && SecureTcpOn ? Timeouts.SynRecvDefenseSeconds
        : Timeouts.ForTcpState(entry.State);

    /// <summary>
    /// Indexes a new NAT connection by the tuple its replies will carry (RIP:rport → client:cport). If another
    /// connection already owns that tuple (two VIPs mapping one client port to the same server port), the first
    /// keeps it, as ip_vs_conn_out_get finds the first match.
    /// </summary>
    private void InsertReplyLink(in Connection<TAddress> connection)
    {
        ConnectionTable<TAddress> table = Table;
        var key = new ConnectionKey<TAddress>(connection.Protocol, connection.ClientAddress, connection.ClientPort, connection.DestAddress, connection.DestPort, ReplyLink: true);
        if (table.Find(key) >= 0)
        {
            return;
        }
        int slot = table.TryInsert(key);
        if (slot < 0)
        {
            return; // cannot happen: the scheduler reserved room for it
        }
        ref Connection<TAddress> link = ref table.At(slot);
        link.DestAddress = connection.VirtualAddress;
        link.DestPort = connection.VirtualPort;
        link.Method = ForwardingMethod.Masquerade;
        link.ExpiresAtMs = long.MaxValue; // goes with its connection, never on its own
    }

    /// <summary>
    /// The live NAT connection whose replies carry (<paramref name="protocol"/>, RIP:rport → client:cport), found through
    /// its reply link (ip_vs_conn_out_get); -1 when there is none.
    /// </summary>
    public int FindNatConnection(byte protocol, TAddress client, ushort clientPort, TAddress server, ushort serverPort, long nowMs)
    {
        ConnectionTable<TAddress> table = Table;
        int linkSlot = table.Find(new ConnectionKey<TAddress>(protocol, client, clientPort, server, serverPort, ReplyLink: true));
        if (linkSlot < 0)
        {
            return -1;
        }
        ref Connection<TAddress> link = ref table.At(linkSlot);
        return FindLive(new ConnectionKey<TAddress>(protocol, client, clientPort, link.DestAddress, link.DestPort), nowMs); // -1: expired just now (its link went with it)
    }
}
