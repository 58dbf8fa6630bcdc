using System.Globalization;
using System.Text.Json;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// `udr run --metrics` as a monitoring stack sees it: Debian's Prometheus server scrapes the daemon every second in the
/// balancer's namespace, and PromQL over what it stored gives the scheduler's split (from udr's per-server counters),
/// the new-connection rate per server, and node_exporter's IPVS totals; `promtool check metrics` accepts the exposition.
/// </summary>
[TestFixture("afpacket")]
[Category("Lab")]
[NonParallelizable]
public sealed class MetricsEndToEndTests(string backend) : EndToEndFixture
{
    private const string Rules = """
        -A -t 198.18.0.100:80 -s wrr
        -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3
        -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1

        """;

    private const string MetricsAddress = "127.0.0.1:9477";
    private const string PrometheusAddress = "127.0.0.1:9490";
    private const int Connections = 200;
    private static readonly TimeSpan ClientPatience = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan ScrapePatience = TimeSpan.FromSeconds(30);

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python);

    [OneTimeSetUp]
    public void RequirePrometheus()
    {
        foreach (string tool in (string[])["prometheus", "promtool", "curl"])
        {
            Assert.That(EndToEndSupport.Run("sh", "-c", $"command -v {tool}").ExitCode, Is.Zero,
                $"the metrics test needs {tool} (Debian's prometheus package; ./build.sh test installs it)");
        }
    }

    [Test]
    public void Prometheus_scrapes_udr_and_answers_the_per_server_split_and_connection_rate_with_promtools_approval()
    {
        Lab.WriteRules(Rules);
        UdrDaemon udr = Lab.StartUdr(backend, "--metrics", MetricsAddress);
        string data = Path.Combine(Lab.Directory, "prometheus");
        File.WriteAllText(Path.Combine(Lab.Directory, "prometheus.yml"), $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: udr
                static_configs:
                  - targets: ['{MetricsAddress}']

            """);
        NamespacedProcess prometheus = Lab.StartLabCommand(LabHost.Lb, "prometheus", "prometheus", "--config.file=prometheus.yml",
            $"--storage.tsdb.path={data}", $"--web.listen-address={PrometheusAddress}");
        Assert.That(prometheus.WaitForLine(l => l.Contains("Server is ready to receive web requests", StringComparison.Ordinal), ScrapePatience),
            Is.Not.Null, $"prometheus did not start: {prometheus.Output}");

        // The first scrape is stored before any traffic, so every counter's series starts from 0.
        Assert.That(WaitFor(() => Query("up{job=\"udr\"}").Values.SingleOrDefault() == 1), Is.True, "Prometheus never scraped udr");

        string exposition = Lab.Network.Exec(LabHost.Lb, $"curl -sf http://{MetricsAddress}/metrics");
        string lint = Lab.Network.Exec(LabHost.Lb, $"curl -sf http://{MetricsAddress}/metrics | promtool check metrics 2>&1; echo \"exit=$?\"");

        JsonElement split = Lab.RunClient(ClientPatience, "split", Connections.ToString(CultureInfo.InvariantCulture), "8", "60");
        EndToEndSupport.AssertSplit(split, Connections, new Dictionary<string, double> { ["rs1"] = 0.75, ["rs2"] = 0.25 });

        // Wait until a scrape after the last connection is stored.
        Dictionary<string, double> counts = [];
        WaitFor(() => (counts = Query("sum by (remote_address) (udr_server_connections_total{local_port=\"80\"})")).Values.Sum() >= Connections);
        Dictionary<string, double> rates = Query("sum by (remote_address) (rate(udr_server_connections_total{local_port=\"80\"}[1m]))");
        Dictionary<string, double> total = Query("node_ipvs_connections_total");
        Dictionary<string, double> weights = Query("node_ipvs_backend_weight{local_address=\"198.18.0.100\",proto=\"TCP\"}");
        Dictionary<string, double> forwarded = Query("sum(udr_frames_total{reason=\"forwarded\"})");
        UdrExit exit = udr.Stop();

        Assert.Multiple(() =>
        {
            Assert.That(lint.Trim(), Is.EqualTo("exit=0"), $"promtool check metrics:\n{lint}");
            Assert.That(exposition, Does.Contain("# TYPE node_ipvs_backend_connections_active gauge"));
            Assert.That(counts.Values.Sum(), Is.EqualTo(Connections), $"PromQL's per-server connections: {Describe(counts)}");
            Assert.That(counts.GetValueOrDefault("198.18.0.11") / Connections, Is.EqualTo(0.75).Within(0.05), $"wrr 3:1 in PromQL: {Describe(counts)}");
            Assert.That(rates.Keys, Is.EquivalentTo(new[] { "198.18.0.11", "198.18.0.12" }), $"a rate per server: {Describe(rates)}");
            Assert.That(rates.GetValueOrDefault("198.18.0.11") / rates.Values.Sum(), Is.EqualTo(0.75).Within(0.05),
                $"the per-server rate of new connections splits 3:1: {Describe(rates)}");
            Assert.That(total.Values.Single(), Is.EqualTo(Connections), "node_ipvs_connections_total counts every connection");
            Assert.That(weights, Is.EquivalentTo(new Dictionary<string, double> { ["198.18.0.11"] = 3, ["198.18.0.12"] = 1 }), "node_ipvs_backend_weight");
            Assert.That(forwarded.Values.Single(), Is.GreaterThanOrEqualTo(Connections * 3), "udr_frames_total{reason=\"forwarded\"}");
            EndToEndSupport.AssertCleanExit(Lab, exit, minimumForwarded: Connections * 3);
        });
    }

    private static bool WaitFor(Func<bool> condition)
    {
        DateTime deadline = DateTime.UtcNow + ScrapePatience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }
            Thread.Sleep(500);
        }
        return true;
    }

    /// <summary>An instant PromQL query through Prometheus' HTTP API: each series' remote_address (or "") and its value.</summary>
    private Dictionary<string, double> Query(string promql)
    {
        string json = Lab.Network.Exec(LabHost.Lb,
            $"curl -sf --get http://{PrometheusAddress}/api/v1/query --data-urlencode 'query={promql}'");
        using var document = JsonDocument.Parse(json);
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (JsonElement series in document.RootElement.GetProperty("data").GetProperty("result").EnumerateArray())
        {
            string key = series.GetProperty("metric").TryGetProperty("remote_address", out JsonElement address) ? address.GetString()! : "";
            values[key] = double.Parse(series.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
        }
        return values;
    }

    private static string Describe(Dictionary<string, double> values) =>
        string.Join(", ", values.Select(v => $"{v.Key}={v.Value.ToString(CultureInfo.InvariantCulture)}"));
}
