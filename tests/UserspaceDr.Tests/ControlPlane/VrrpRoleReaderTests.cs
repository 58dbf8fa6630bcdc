using UserspaceDr.ControlPlane.Vrrp;

namespace UserspaceDr.Tests.ControlPlane;

public class VrrpRoleReaderTests
{
    // The lines keepalived 2.2 writes to vrrp_notify_fifo (seen from Debian's keepalived in the lab).
    [TestCase("INSTANCE \"VI_1\" MASTER 150", "VI_1", VrrpRole.Master)]
    [TestCase("INSTANCE \"VI_1\" BACKUP 100\n", "VI_1", VrrpRole.Backup)]
    [TestCase("INSTANCE \"web\" FAULT 0", "web", VrrpRole.Fault)]
    [TestCase("GROUP \"G1\" STOP 0", "G1", VrrpRole.Stop)]
    public void Keepalived_s_lines_give_the_instance_and_its_state(string line, string name, VrrpRole role) =>
        Assert.That(VrrpRoleReader.Parse(line), Is.EqualTo((name, role)));

    [TestCase("")]
    [TestCase("INSTANCE VI_1 MASTER 150")]
    [TestCase("INSTANCE \"VI_1\" DELETED 0")]
    [TestCase("VS [198.18.0.100]:tcp:80 UP")]
    [TestCase("INSTANCE \"\" MASTER 1")]
    public void Anything_else_is_not_a_transition(string line) => Assert.That(VrrpRoleReader.Parse(line), Is.Null);
}
