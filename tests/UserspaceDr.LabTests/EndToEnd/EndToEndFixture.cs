namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// One <see cref="EndToEndLab"/> per fixture: brought up (tools checked, daemon published when needed, servers
/// started) before the first test, torn down after the last; each test starts from a balancer with nothing of the
/// previous test's left.
/// </summary>
public abstract class EndToEndFixture
{
    private EndToEndLab? _lab;

    internal EndToEndLab Lab => _lab ?? throw new InvalidOperationException("no lab: OneTimeSetUp did not bring one up");

    /// <summary>Makes the fixture's lab; <see cref="Prepare"/> then starts what it serves.</summary>
    internal abstract EndToEndLab CreateLab(string python);

    /// <summary>Starts the lab's servers (and whatever else the fixture needs running for all its tests).</summary>
    internal virtual void Prepare(EndToEndLab lab) => lab.StartServers();

    [OneTimeSetUp]
    public void StartLab()
    {
        string python = EndToEndSupport.EnsureToolsAndDaemon();
        _lab = CreateLab(python);
        try
        {
            Prepare(_lab);
        }
        catch
        {
            _lab.Dispose();
            _lab = null;
            throw;
        }
    }

    [OneTimeTearDown]
    public void RemoveLab()
    {
        _lab?.Dispose();
        _lab = null;
    }

    [SetUp]
    public void BeginTest() => Lab.BeginTest();

    [TearDown]
    public void EndTest() => _lab?.EndTest();
}
