using UserspaceDr.Core.Connections;
using UserspaceDr.Io.Engine;
using UserspaceDr.Io.Runtime;

namespace UserspaceDr.Tests.Control;

/// <summary>The -L -c handoff: the worker copies its own table between batches; readers never touch it.</summary>
public class ConnectionSnapshotSlotTests
{
    [Test]
    public void The_worker_answers_with_a_copy_of_its_table()
    {
        var table = new ConnectionTable<uint>(64, seed: 1);
        for (ushort port = 1; port <= 5; port++)
        {
            int slot = table.TryInsert(new ConnectionKey<uint>(6, 0xC6120001, port, 0xC6120064, 80));
            table.At(slot).ExpiresAtMs = 1000 + port;
        }
        var slot2 = new ConnectionSnapshotSlot();
        using var stop = new CancellationTokenSource();
        var worker = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                slot2.Serve(table);
                Thread.Sleep(1);
            }
            slot2.Close();
        });
        worker.Start();
        try
        {
            ConnectionSnapshot? copy = slot2.Take(TimeSpan.FromSeconds(5));
            Assert.That(copy, Is.Not.Null);
            Assert.That(copy!.Ipv4.Select(c => c.ClientPort).Order(), Is.EqualTo(new ushort[] { 1, 2, 3, 4, 5 }));
            Assert.That(copy.Ipv6, Is.Empty, "no IPv6 table");
            Assert.That(slot2.Take(TimeSpan.FromSeconds(5))!.Count, Is.EqualTo(5), "and again");
        }
        finally
        {
            stop.Cancel();
            worker.Join();
        }
        Assert.That(slot2.Take(TimeSpan.FromSeconds(5))!.Count, Is.Zero, "a stopped worker answers at once, with nothing");
    }

    [Test]
    public void A_worker_that_does_not_answer_times_out_and_a_late_answer_harms_nothing()
    {
        var table = new ConnectionTable<uint>(16, seed: 1);
        var slot = new ConnectionSnapshotSlot();
        Assert.That(slot.Take(TimeSpan.FromMilliseconds(50)), Is.Null);
        slot.Serve(table); // nothing pending any more: nothing happens
        Task<ConnectionSnapshot?> waiting = Task.Run(() => slot.Take(TimeSpan.FromSeconds(10)));
        Thread.Sleep(100);
        slot.Close();
        Assert.That(waiting.Wait(TimeSpan.FromSeconds(5)), Is.True, "closing releases a waiting reader");
        Assert.That(waiting.Result!.Count, Is.Zero);
    }
}
