using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// `udr run --config keepalived.conf` in the lab: real web servers on rs1 and rs2 (listening on the VIP for clients and
/// on their own addresses for the checks), real checks from the balancer, real clients. A failed server leaves the
/// pool within keepalived's worst-case detection time and comes back within delay_loop; what `udr adm -L -n` and
/// `udr checks` show follows; established connections survive.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class HealthCheckEndToEndTests : HealthCheckFixture
{
    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python);

    // Each test starts the web servers it needs (it stops and restarts them).
    internal override void Prepare(EndToEndLab lab)
    {
    }

    /// <summary>rs1 and rs2 behind wrr; rs2 is up while <paramref name="healthy"/> exists (a MISC_CHECK), rs1 always.</summary>
    private static string FlagFileConfig(string healthy, string rs2Options = "") => $$"""
        virtual_server 198.18.0.100 80 {
            delay_loop 1
            lb_algo wrr
            lb_kind DR
            real_server 198.18.0.11 80 {
                weight 1
            }
            real_server 198.18.0.12 80 {
                weight 2
                {{rs2Options}}
                MISC_CHECK {
                    misc_path "/usr/bin/test -e {{healthy}}"
                    misc_timeout 2
                }
            }
        }
        """;

    /// <summary>Starts a download of big.bin held after its first MiB, served by <paramref name="wanted"/> (asks again while rr gives the other).</summary>
    private NamespacedProcess PausedDownloadFrom(string wanted)
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            NamespacedProcess downloader = Lab.StartClient("download", "/big.bin", (1024 * 1024).ToString(CultureInfo.InvariantCulture));
            string? paused = downloader.WaitForLine(l => l.StartsWith("paused ", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            Assert.That(paused, Is.Not.Null, $"the download did not get going: {downloader.Output}");
            string connections = Adm("-L", "-c", "-n");
            string[] established = [.. connections.Split('\n').Where(l => l.Contains("ESTABLISHED", StringComparison.Ordinal))];
            if (established.Any(l => l.TrimEnd().EndsWith(wanted + ":80", StringComparison.Ordinal)) &&
                established.Length == attempt + 1)
            {
                return downloader;
            }
            if (established.Length != attempt + 1)
            {
                Assert.Fail($"expected {attempt + 1} established connection(s):\n{connections}");
            }
        }
        Assert.Fail($"no download from {wanted} in three tries");
        return null!;
    }

    private static JsonElement Finish(NamespacedProcess downloader)
    {
        downloader.WriteLine("go");
        Assert.That(downloader.WaitForExit(TimeSpan.FromSeconds(60)), Is.True, $"the download did not finish: {downloader.Output}");
        Assert.That(downloader.ExitCode, Is.Zero, downloader.Output);
        using JsonDocument result = JsonDocument.Parse(downloader.Output.Split('\n').Last(l => l.StartsWith('{')));
        return result.RootElement.Clone();
    }

    [Test]
    public void Tcp_and_http_checks_take_a_dead_server_out_and_put_it_back_and_a_download_from_the_other_survives_both()
    {
        Lab.StartWebServer(LabHost.Rs1);
        NamespacedProcess rs2Web = Lab.StartWebServer(LabHost.Rs2);
        UdrDaemon udr = StartUdr("""
            virtual_server 198.18.0.100 80 {
                delay_loop 1
                lb_algo rr
                lb_kind DR
                protocol TCP
                real_server 198.18.0.11 80 {
                    TCP_CHECK {
                        connect_timeout 1
                    }
                }
                real_server 198.18.0.12 80 {
                    HTTP_GET {
                        url {
                            path /index.html
                            status_code 200
                        }
                        connect_timeout 1
                        retry 1
                        delay_before_retry 1
                    }
                    TCP_CHECK {
                        connect_timeout 1
                        retry 1
                        delay_before_retry 1
                    }
                }
            }
            """);
        AssertSplit(Lab.RunClient(ClientPatience, "split", "20", "4", "30"), 20, new Dictionary<string, double> { ["rs1"] = 0.5, ["rs2"] = 0.5 });
        NamespacedProcess download = PausedDownloadFrom("198.18.0.11");

        // rs2's server dies: delay_loop + connect_timeout + retry × (delay_before_retry + connect_timeout), plus 1 s.
        var clock = Stopwatch.StartNew();
        rs2Web.Stop(NamespacedProcess.SigTerm, TimeSpan.FromSeconds(5));
        TimeSpan down = AwaitTransition(udr, "198.18.0.12", "down", clock, TimeSpan.FromSeconds(1 + 1 + (1 * (1 + 1)) + 1));
        Lab.Step($"rs2 out after {down.TotalSeconds:F1} s");
        AssertSplit(Lab.RunClient(ClientPatience, "split", "20", "4", "30"), 20, new Dictionary<string, double> { ["rs1"] = 1.0 });
        string listing = Adm("-L", "-n");
        Assert.That(listing, Does.Contain("198.18.0.11:80").And.Not.Contain("198.18.0.12:80"), "a failed server without inhibit_on_failure is removed");
        Assert.That(Udr(["checks", "--control", ControlPath]), Does.Match(@"198\.18\.0\.12:80\s+(HTTP_GET|TCP_CHECK)\s+down\s+\d+\s+\S+\s+connect failed: connection refused"),
            "whichever of its checkers failed first and took it down");

        // It comes back: within delay_loop, plus 1 s.
        clock.Restart();
        Lab.StartWebServer(LabHost.Rs2);
        TimeSpan up = AwaitTransition(udr, "198.18.0.12", "up", clock, TimeSpan.FromSeconds(1 + 1));
        Lab.Step($"rs2 back after {up.TotalSeconds:F1} s");
        AssertSplit(Lab.RunClient(ClientPatience, "split", "20", "4", "30"), 20, new Dictionary<string, double> { ["rs1"] = 0.5, ["rs2"] = 0.5 });

        JsonElement finished = Finish(download);
        Assert.That(finished.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength), "the download completed");
        Assert.That(Lab.ServerWithBigFile(finished.GetProperty("sha256").GetString()!), Is.EqualTo("rs1"), "intact, from rs1");
        UdrExit exit = udr.Stop();
        Assert.That(exit.ExitCode, Is.Zero, exit.Output);
    }

    [Test]
    public void Inhibit_on_failure_sets_weight_0_and_a_download_from_the_failed_server_completes()
    {
        Lab.StartWebServer(LabHost.Rs1);
        Lab.StartWebServer(LabHost.Rs2);
        string healthy = Path.Combine(Lab.Directory, "rs2-healthy");
        File.WriteAllText(healthy, "");
        UdrDaemon udr = StartUdr(FlagFileConfig(healthy, rs2Options: "inhibit_on_failure"));
        NamespacedProcess download = PausedDownloadFrom("198.18.0.12");

        var clock = Stopwatch.StartNew();
        File.Delete(healthy); // MISC_CHECK: retry 0, so the first failure counts
        AwaitTransition(udr, "198.18.0.12", "down", clock, TimeSpan.FromSeconds(1 + 2 + 1));
        Assert.That(Adm("-L", "-n"), Does.Match(@"198\.18\.0\.12:80\s+Route\s+0\s"), "inhibited: still listed, weight 0");
        AssertSplit(Lab.RunClient(ClientPatience, "split", "12", "4", "30"), 12, new Dictionary<string, double> { ["rs1"] = 1.0 });

        JsonElement finished = Finish(download);
        Assert.That(finished.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength), "the quiesced server's download completed");
        Assert.That(Lab.ServerWithBigFile(finished.GetProperty("sha256").GetString()!), Is.EqualTo("rs2"), "intact, from rs2");

        clock.Restart();
        File.WriteAllText(healthy, "");
        AwaitTransition(udr, "198.18.0.12", "up", clock, TimeSpan.FromSeconds(1 + 1));
        Assert.That(Adm("-L", "-n"), Does.Match(@"198\.18\.0\.12:80\s+Route\s+2\s"), "back at its weight");
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Expire_nodest_conn_decides_whether_a_connection_to_a_removed_server_waits_for_it_or_ends(bool expire)
    {
        Lab.StartWebServer(LabHost.Rs1);
        Lab.StartWebServer(LabHost.Rs2);
        string healthy = Path.Combine(Lab.Directory, "rs2-healthy");
        File.WriteAllText(healthy, "");
        UdrDaemon udr = StartUdr(FlagFileConfig(healthy), expire ? ["--expire-nodest-conn"] : []);
        NamespacedProcess download = PausedDownloadFrom("198.18.0.12");

        var clock = Stopwatch.StartNew();
        File.Delete(healthy);
        AwaitTransition(udr, "198.18.0.12", "down", clock, TimeSpan.FromSeconds(1 + 2 + 1));
        Assert.That(Adm("-L", "-n"), Does.Not.Contain("198.18.0.12:80"), "removed (no inhibit_on_failure)");

        // The client reads on: its ACKs for rs2's data reach the balancer while rs2 is out of the pool.
        download.WriteLine("go");
        Thread.Sleep(TimeSpan.FromSeconds(1.5));
        string connections = Adm("-L", "-c", "-n");
        if (expire)
        {
            // expire_nodest_conn=1: the entry was expired on the first such packet; the rest are not a connection's.
            Assert.That(connections, Does.Not.Contain("ESTABLISHED"), "the connection to the removed server was expired");
            UdrExit exit = udr.Stop();
            Assert.That(exit.Count("tcp-not-syn"), Is.GreaterThan(0), exit.TotalsLine);
            Assert.That(exit.Count("destination-removed"), Is.Zero, exit.TotalsLine);
            return;
        }

        // expire_nodest_conn=0: the entry stays and its packets are dropped; when the server comes back (the same
        // server, from the kernel's "trash"), the connection goes on and the download completes intact.
        Assert.That(connections, Does.Match(@"ESTABLISHED\s+198\.18\.0\.1:\d+\s+198\.18\.0\.100:80\s+198\.18\.0\.12:80"));
        File.WriteAllText(healthy, "");
        clock.Restart();
        AwaitTransition(udr, "198.18.0.12", "up", clock, TimeSpan.FromSeconds(1 + 1));
        Assert.That(download.WaitForExit(TimeSpan.FromSeconds(60)), Is.True, $"the download did not finish: {download.Output}");
        using JsonDocument result = JsonDocument.Parse(download.Output.Split('\n').Last(l => l.StartsWith('{')));
        Assert.That(result.RootElement.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength), "completed");
        Assert.That(Lab.ServerWithBigFile(result.RootElement.GetProperty("sha256").GetString()!), Is.EqualTo("rs2"), "intact, from rs2");
        UdrExit stopped = udr.Stop();
        Assert.That(stopped.Count("destination-removed"), Is.GreaterThan(0), stopped.TotalsLine);
    }

    [Test]
    public void Udp_and_dns_checks_bring_servers_up_from_alpha_and_take_them_out_when_their_servers_stop()
    {
        NamespacedProcess echo = Lab.StartLabProgram(LabHost.Rs1, "echo listening", LabScripts.UdpEchoFile, "rs1", "0.0.0.0");
        NamespacedProcess dns = Lab.StartLabProgram(LabHost.Rs2, "dns listening", LabScripts.DnsServerFile, "0.0.0.0");
        var clock = Stopwatch.StartNew();
        UdrDaemon udr = StartUdr("""
            virtual_server 198.18.0.100 5353 {
                delay_loop 1
                lb_algo rr
                lb_kind DR
                protocol UDP
                alpha
                real_server 198.18.0.11 5353 {
                    UDP_CHECK {
                        payload 70696e67
                        require_reply 7273XX2070696e67
                        connect_timeout 1
                        retry 0
                    }
                }
                real_server 198.18.0.12 5353 {
                    DNS_CHECK {
                        connect_port 53
                        type A
                        name lab.example
                        connect_timeout 1
                        retry 0
                    }
                }
            }
            """);
        // alpha: both start out of the pool, and come in on their first passed check (warmup 0..delay_loop).
        const string Service = "UDP 198.18.0.100:5353";
        AwaitTransition(udr, "198.18.0.11:5353", "up", clock, TimeSpan.FromSeconds(60), Service);
        AwaitTransition(udr, "198.18.0.12:5353", "up", clock, TimeSpan.FromSeconds(60), Service);
        Assert.That(Adm("-L", "-n"), Does.Contain("198.18.0.11:5353").And.Contain("198.18.0.12:5353"));

        clock.Restart();
        echo.Stop(NamespacedProcess.SigTerm, TimeSpan.FromSeconds(5));
        AwaitTransition(udr, "198.18.0.11:5353", "down", clock, TimeSpan.FromSeconds(1 + 1 + 1), Service);
        clock.Restart();
        dns.Stop(NamespacedProcess.SigTerm, TimeSpan.FromSeconds(5));
        AwaitTransition(udr, "198.18.0.12:5353", "down", clock, TimeSpan.FromSeconds(1 + 1 + 1), Service);
        string checks = Udr(["checks", "--control", ControlPath]);
        Assert.That(checks, Does.Match(@"198\.18\.0\.11:5353\s+UDP_CHECK\s+down\s+\d+\s+\S+\s+port unreachable \(ICMP\)"));
        Assert.That(checks, Does.Match(@"198\.18\.0\.12:5353\s+DNS_CHECK\s+down\s+\d+\s+\S+\s+port unreachable \(ICMP\)"));

        // A DNS server that answers, but with an error, fails the check too.
        Lab.StartLabProgram(LabHost.Rs2, "dns listening", LabScripts.DnsServerFile, "0.0.0.0", "5");
        Thread.Sleep(TimeSpan.FromSeconds(2.5));
        Assert.That(Udr(["checks", "--control", ControlPath]), Does.Match(@"198\.18\.0\.12:5353\s+DNS_CHECK\s+down\s+\d+\s+\S+\s+DNS A lab.example: RCODE 5"));
        Assert.That(Adm("-L", "-n"), Does.Not.Contain("198.18.0.12:5353"));
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    [Test]
    public void Losing_the_quorum_hands_the_service_to_the_sorry_server_and_runs_the_quorum_scripts()
    {
        Lab.StartWebServer(LabHost.Rs1);
        Lab.StartWebServer(LabHost.Rs2);
        string healthy = Path.Combine(Lab.Directory, "rs2-healthy");
        File.WriteAllText(healthy, "");
        string quorumDown = Path.Combine(Lab.Directory, "quorum-down");
        string quorumUp = Path.Combine(Lab.Directory, "quorum-up");
        UdrDaemon udr = StartUdr($$"""
            virtual_server 198.18.0.100 80 {
                delay_loop 1
                lb_algo wrr
                lb_kind DR
                quorum 2
                quorum_down "/usr/bin/touch {{quorumDown}}"
                quorum_up "/usr/bin/touch {{quorumUp}}"
                sorry_server 198.18.0.11 80
                real_server 198.18.0.12 80 {
                    weight 2
                    MISC_CHECK {
                        misc_path "/usr/bin/test -e {{healthy}}"
                    }
                }
            }
            """);
        AssertSplit(Lab.RunClient(ClientPatience, "split", "10", "2", "30"), 10, new Dictionary<string, double> { ["rs2"] = 1.0 });

        File.Delete(healthy);
        Assert.That(udr.WaitForLine(l => l.Contains("lost its quorum", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        AssertSplit(Lab.RunClient(ClientPatience, "split", "10", "2", "30"), 10, new Dictionary<string, double> { ["rs1"] = 1.0 });
        Assert.That(Adm("-L", "-n"), Does.Contain("198.18.0.11:80").And.Not.Contain("198.18.0.12:80"), "the sorry server alone");

        File.WriteAllText(healthy, "");
        Assert.That(udr.WaitForLine(l => l.Contains("regained its quorum", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        AssertSplit(Lab.RunClient(ClientPatience, "split", "10", "2", "30"), 10, new Dictionary<string, double> { ["rs2"] = 1.0 });
        Assert.That(udr.WaitForLine(l => l.Contains("quorum up) exited 0", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        Assert.That(File.Exists(quorumDown) && File.Exists(quorumUp), Is.True, "both quorum scripts ran");
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    [Test]
    public void A_dynamic_misc_check_sets_the_weight_and_a_hanging_script_is_killed_and_counts_as_a_failure()
    {
        Lab.StartWebServer(LabHost.Rs1);
        Lab.StartWebServer(LabHost.Rs2);
        string exitCode = Path.Combine(Lab.Directory, "rs2-exit");
        string script = Path.Combine(Lab.Directory, "rs2-check.sh");
        File.WriteAllText(exitCode, "5");
        // Exits with the number in the file; "hang" sleeps past misc_timeout.
        File.WriteAllText(script, $"#!/bin/sh\ncode=$(cat {exitCode})\n[ \"$code\" = hang ] && exec sleep 30\necho \"load report $code\"\nexit $code\n");
        UdrDaemon udr = StartUdr($$"""
            virtual_server 198.18.0.100 80 {
                delay_loop 1
                lb_algo wrr
                lb_kind DR
                real_server 198.18.0.11 80 {
                    weight 1
                }
                real_server 198.18.0.12 80 {
                    weight 1
                    MISC_CHECK {
                        misc_path "/bin/sh {{script}}"
                        misc_timeout 1
                        misc_dynamic
                    }
                }
            }
            """);
        Assert.That(udr.WaitForLine(l => l.Contains("198.18.0.12:80 of TCP 198.18.0.100:80: weight 3", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        Assert.That(Adm("-L", "-n"), Does.Match(@"198\.18\.0\.12:80\s+Route\s+3\s"), "exit 5: weight 5 - 2");
        AssertSplit(Lab.RunClient(ClientPatience, "split", "40", "4", "30"), 40, new Dictionary<string, double> { ["rs1"] = 0.25, ["rs2"] = 0.75 });

        var clock = Stopwatch.StartNew();
        File.WriteAllText(exitCode, "hang");
        AwaitTransition(udr, "198.18.0.12", "down", clock, TimeSpan.FromSeconds(1 + 1 + 1));
        Assert.That(udr.Output, Does.Contain("did not finish within 1 s and was killed"));
        Assert.That(Adm("-L", "-n"), Does.Not.Contain("198.18.0.12:80"));
        AssertSplit(Lab.RunClient(ClientPatience, "split", "10", "2", "30"), 10, new Dictionary<string, double> { ["rs1"] = 1.0 });

        File.WriteAllText(exitCode, "0");
        clock.Restart();
        AwaitTransition(udr, "198.18.0.12", "up", clock, TimeSpan.FromSeconds(1 + 1));
        Assert.That(Adm("-L", "-n"), Does.Match(@"198\.18\.0\.12:80\s+Route\s+3\s"), "exit 0 keeps the weight the script gave last");
        Assert.That(Udr(["checks", "--control", ControlPath]), Does.Contain("exited 0 (load report 0)"));
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    [Test]
    public void A_broken_configuration_is_refused_at_start_and_on_reload_and_the_running_pool_stays()
    {
        File.WriteAllText(ConfigPath, "virtual_server 198.18.0.100 80 {\n  lb_algo nosuch\n}\n");
        CommandResult refused = ProcessRunner.Run(UdrBinary.Executable, ["run", "--interface", "eth0", "--config", ConfigPath], TimeSpan.FromSeconds(30));
        Assert.That(refused.ExitCode, Is.EqualTo(2), refused.ToString());
        Assert.That(refused.Error, Does.Contain($"{ConfigPath}:2: lb_algo nosuch: udr has no such scheduler"));

        Lab.StartWebServer(LabHost.Rs1);
        Lab.StartWebServer(LabHost.Rs2);
        UdrDaemon udr = StartUdr("""
            virtual_server 198.18.0.100 80 {
                delay_loop 1
                lb_algo rr
                lb_kind DR
                real_server 198.18.0.11 80 {
                    TCP_CHECK {
                        connect_timeout 1
                    }
                }
                real_server 198.18.0.12 80 {
                    TCP_CHECK {
                        connect_timeout 1
                        bindto 198.18.9.9
                    }
                }
            }
            """);
        // A checker that cannot even send (its bindto address is not the balancer's) fails with the reason.
        var clock = Stopwatch.StartNew();
        AwaitTransition(udr, "198.18.0.12", "down", clock, TimeSpan.FromSeconds(1 + 1 + 1));
        Assert.That(Udr(["checks", "--control", ControlPath]), Does.Contain("connect failed: bindto address not available"));

        // A reload that changes nothing a checker depends on (a comment moves every line) keeps both checkers with
        // their state: rs2 stays out (keepalived does not re-add a failed server on reload), nothing flaps.
        static bool Transition(string line) =>
            line.Contains(" is up: ", StringComparison.Ordinal) || line.Contains(" is down: ", StringComparison.Ordinal);
        int transitions = udr.CountLines(Transition);
        File.WriteAllText(ConfigPath, "# reloaded\n" + File.ReadAllText(ConfigPath));
        Assert.That(udr.Reload(), Does.Contain("rules applied"));
        Assert.That(udr.WaitForLine(l => l.Contains("2 checker(s) on 2 real server(s) of 1 service(s); 2 kept", StringComparison.Ordinal),
            TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        Thread.Sleep(TimeSpan.FromSeconds(2.5)); // two more rounds of checks
        Assert.That(udr.CountLines(Transition), Is.EqualTo(transitions), "no server went up or down across the reload");
        Assert.That(Adm("-L", "-n"), Does.Contain("198.18.0.11:80").And.Not.Contain("198.18.0.12:80"));

        File.WriteAllText(ConfigPath, "virtual_server 198.18.0.100 80 {\n  real_server 198.18.0.13 80 {\n    TCP_CHECK {\n}\n");
        string answer = udr.Reload();
        Assert.That(answer, Does.Contain("reload refused").And.Contain("not closed"));
        Assert.That(Adm("-L", "-n"), Does.Contain("198.18.0.11:80").And.Not.Contain("198.18.0.13"), "the running pool stays");
        AssertSplit(Lab.RunClient(ClientPatience, "split", "10", "2", "30"), 10, new Dictionary<string, double> { ["rs1"] = 1.0 });
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    /// <summary>
    /// keepalived's SSL_GET sample (moved into the lab, in DR): checks over TLS to another port than the service's, the
    /// page's MD5 compared with the digest; rs2's page is not the one the digest was made from.
    /// </summary>
    [Test]
    public void Ssl_get_checks_a_real_tls_server_on_its_connect_port_and_compares_the_digest()
    {
        string cert = Path.Combine(Lab.Directory, "rs.crt");
        string key = Path.Combine(Lab.Directory, "rs.key");
        CommandResult made = ProcessRunner.Run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=rs.lab.example", "-keyout", key, "-out", cert], TimeSpan.FromSeconds(60));
        Assert.That(made.ExitCode, Is.Zero, made.ToString());
        foreach (LabHost server in (LabHost[])[LabHost.Rs1, LabHost.Rs2])
        {
            Lab.StartLabProgram(server, "https listening", LabScripts.HttpsServerFile,
                Path.Combine(Lab.Directory, LabNetwork.HostName(server)), cert, key, "444");
        }
        UdrDaemon udr = StartUdr(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "keepalived-samples", "keepalived.conf.SSL_GET.port")));
        // The first checks come within warmup (delay_loop, 6 s); rs2 fails at once (no check has passed before).
        var clock = Stopwatch.StartNew();
        AwaitTransition(udr, "198.18.0.12:443", "down", clock, TimeSpan.FromSeconds(6 + 3 + 1), "TCP 198.18.0.100:443");
        string checks = AwaitChecks(c => c.Contains("HTTP 200 for /", StringComparison.Ordinal));
        Assert.That(checks, Does.Match(@"198\.18\.0\.11:443\s+SSL_GET\s+up\s+0\s+\S+\s+HTTP 200 for /"));
        Assert.That(checks, Does.Match(@"198\.18\.0\.12:443\s+SSL_GET\s+down\s+\d+\s+\S+\s+HTTP digest of / is 964d89a1b7e857e4ceed9ebd9a5079f3, not 4fc2f671f0898f76d30da6b1f9566f42"));
        string listing = Adm("-L", "-n");
        Assert.That(listing, Does.Contain("198.18.0.11:443").And.Not.Contain("198.18.0.12:443"));
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    /// <summary>
    /// Debian's own ldirectord, unmodified, drives udr through tools/ipvsadm (the shim that makes `ipvsadm` mean
    /// `udr adm`): it creates the service, takes a server whose HTTP check fails out, and puts it back.
    /// </summary>
    [Test]
    public void Debian_s_ldirectord_drives_udr_through_the_ipvsadm_shim()
    {
        Assume.That(File.Exists("/usr/sbin/ldirectord"), Is.True, "ldirectord is not installed (./build.sh test installs it)");
        Lab.StartWebServer(LabHost.Rs1);
        NamespacedProcess rs2Web = Lab.StartWebServer(LabHost.Rs2);
        Lab.WriteRules("");
        UdrDaemon udr = Lab.StartUdr(Backend, "--control", ControlPath);

        // ldirectord in debug mode runs ./ipvsadm when there is one (ldirectord.in); installed, the shim replaces
        // /usr/sbin/ipvsadm (dpkg-divert, README). Either way it is the same unmodified ldirectord and the same shim.
        string shim = Path.Combine(Lab.Directory, "ipvsadm");
        File.Copy(Path.Combine(RepositoryPaths.Root, "tools", "ipvsadm"), shim, overwrite: true);
        Assert.That(ProcessRunner.Run("chmod", "0755", shim).ExitCode, Is.Zero);
        string config = Path.Combine(Lab.Directory, "ldirectord-udr-lab.cf");
        File.WriteAllText(config, """
            checktimeout=1
            checkinterval=1
            autoreload=no
            quiescent=no
            virtual=198.18.0.100:80
            	real=198.18.0.11:80 gate
            	real=198.18.0.12:80 gate
            	service=http
            	scheduler=rr
            	protocol=tcp
            	checktype=negotiate
            	request="index.html"
            	receive="rs[12]"

            """);
        NamespacedProcess ldirectord = Lab.StartLabCommand(LabHost.Lb, "ldirectord",
            "/usr/bin/env", $"UDR={UdrBinary.Executable}", $"UDR_CONTROL={ControlPath}", "/usr/sbin/ldirectord", "-d", config, "start");
        try
        {
            string both = AwaitListing(l => l.Contains("198.18.0.11:80", StringComparison.Ordinal) && l.Contains("198.18.0.12:80", StringComparison.Ordinal), ldirectord);
            Assert.That(both, Does.Contain("TCP  198.18.0.100:80 rr"), "ldirectord created the service through udr adm");
            AssertSplit(Lab.RunClient(ClientPatience, "split", "20", "4", "30"), 20, new Dictionary<string, double> { ["rs1"] = 0.5, ["rs2"] = 0.5 });

            rs2Web.Stop(NamespacedProcess.SigTerm, TimeSpan.FromSeconds(5));
            AwaitListing(l => !l.Contains("198.18.0.12:80", StringComparison.Ordinal), ldirectord);
            AssertSplit(Lab.RunClient(ClientPatience, "split", "20", "4", "30"), 20, new Dictionary<string, double> { ["rs1"] = 1.0 });

            Lab.StartWebServer(LabHost.Rs2);
            AwaitListing(l => l.Contains("198.18.0.12:80", StringComparison.Ordinal), ldirectord);
            AssertSplit(Lab.RunClient(ClientPatience, "split", "20", "4", "30"), 20, new Dictionary<string, double> { ["rs1"] = 0.5, ["rs2"] = 0.5 });
        }
        finally
        {
            ldirectord.Stop(NamespacedProcess.SigTerm, TimeSpan.FromSeconds(10));
            Lab.Step($"ldirectord said:\n{ldirectord.Output}");
        }
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    /// <summary>Polls `udr adm -L -n` until <paramref name="wanted"/> holds (20 s at most); returns that listing.</summary>
    private string AwaitListing(Func<string, bool> wanted, NamespacedProcess ldirectord)
    {
        var patience = Stopwatch.StartNew();
        string listing = "";
        while (patience.Elapsed < TimeSpan.FromSeconds(20))
        {
            CommandResult result = ProcessRunner.Run(UdrBinary.Executable, ["adm", "--control", ControlPath, "-L", "-n"], TimeSpan.FromSeconds(10));
            listing = result.Output;
            if (wanted(listing))
            {
                Lab.Step($"after {patience.Elapsed.TotalSeconds:F1} s:\n{listing.TrimEnd()}");
                return listing;
            }
            Thread.Sleep(200);
        }
        Assert.Fail($"the listing did not change as expected in 20 s:\n{listing}\nldirectord:\n{ldirectord.Output}");
        return listing;
    }
}
