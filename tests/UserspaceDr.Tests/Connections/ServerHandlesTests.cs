using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Connections;

/// <summary>
/// An entry names its server by a handle, never by a reference: the handle resolves while the server lives, to nothing
/// once it is retired, and never to a later server that is handed the same index.
/// </summary>
public class ServerHandlesTests
{
    private static RuleSetSpec WithServer(string address) => Stats.ServerStatsSlotsTests.WithServer(address);

    [Test]
    public void An_entry_resolves_its_server_through_the_handle()
    {
        var server = new RealServer(InetAddress.Parse("198.18.0.11"), 80, ForwardingMethod.Route, 1);
        var entry = new Connection<uint> { Dest = server };
        Assert.Multiple(() =>
        {
            Assert.That(server.Handle, Is.Not.Zero);
            Assert.That(entry.DestHandle, Is.EqualTo(server.Handle));
            Assert.That(entry.Dest, Is.SameAs(server));
            Assert.That(default(Connection<uint>).Dest, Is.Null, "a zeroed entry names no server");
            Assert.That(ServerHandles.Resolve(ulong.MaxValue), Is.Null, "an index past the table");
        });
        entry.Dest = null;
        Assert.That(entry.DestHandle, Is.Zero);
    }

    [Test]
    public void A_server_gone_for_good_resolves_to_nothing_and_its_index_serves_a_new_server_under_a_new_generation()
    {
        RuleSet first = RuleSet.Build(WithServer("198.18.0.11"));
        RealServer old = first.Services[0].Destinations[0];
        var entry = new Connection<uint> { Dest = old };
        ulong oldHandle = entry.DestHandle;

        RuleSet second = RuleSet.Build(WithServer("198.18.0.12"), first); // old had no connections: retired
        Assert.Multiple(() =>
        {
            Assert.That(entry.Dest, Is.Null, "a retired server is not resolved");
            Assert.That(old.Handle, Is.Zero);
        });

        // Servers made from here on may take the freed index; none of them answers to the old handle.
        var later = Enumerable.Range(0, 8).Select(i => new RealServer(InetAddress.Parse($"198.18.1.{i + 1}"), 80, ForwardingMethod.Route, 1)).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(later.Select(s => s.Handle), Has.None.EqualTo(oldHandle));
            Assert.That(ServerHandles.Resolve(oldHandle), Is.Null);
            Assert.That(later.Select(s => ServerHandles.Resolve(s.Handle)), Is.EqualTo(later));
            Assert.That(second.Services[0].Destinations[0].Handle, Is.Not.Zero);
        });
    }

    [Test]
    public void A_deleted_server_that_a_connection_still_holds_resolves_until_the_connection_is_gone()
    {
        RuleSet first = RuleSet.Build(WithServer("198.18.0.11"));
        RealServer held = first.Services[0].Destinations[0];
        held.BindConnection(active: true, template: false);
        var entry = new Connection<uint> { Dest = held };
        RuleSet second = RuleSet.Build(WithServer("198.18.0.12"), first);
        Assert.That(entry.Dest, Is.SameAs(held), "in the kernel's dest trash, still the connection's server");
        held.UnbindConnection(active: true, template: false);
        _ = RuleSet.Build(WithServer("198.18.0.13"), second);
        Assert.That(entry.Dest, Is.Null);
    }

    [Test]
    public void Many_servers_made_at_once_on_several_threads_each_resolve_to_themselves()
    {
        var made = new RealServer[4][];
        Parallel.For(0, made.Length, t => made[t] = Enumerable.Range(0, 500)
            .Select(i => new RealServer(InetAddress.Parse($"198.18.{t}.{i % 250 + 1}"), (ushort)(i + 1), ForwardingMethod.Route, 1)).ToArray());
        RealServer[] all = made.SelectMany(m => m).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(all.Select(s => s.Handle).Distinct().Count(), Is.EqualTo(all.Length));
            Assert.That(all.All(s => ReferenceEquals(ServerHandles.Resolve(s.Handle), s)), Is.True);
        });
    }
}
