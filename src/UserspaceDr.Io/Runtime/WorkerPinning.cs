using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// Puts a worker's thread on the CPU `--cpus` gave it, from the thread itself, before its first frame. The CLI checked
/// the CPU against the process's affinity at start; a refusal now (a cpuset changed in between) is logged and the
/// worker runs unpinned rather than not at all.
/// </summary>
internal static class WorkerPinning
{
    public static void PinCurrentThread(int? cpu, ILogger log)
    {
        if (cpu is not int number)
        {
            return;
        }
        string thread = Thread.CurrentThread.Name ?? "worker";
        int errno = CpuAffinity.PinCurrentThread(number);
        if (errno == 0)
        {
            Log.WorkerPinned(log, thread, number);
        }
        else
        {
            Log.WorkerNotPinned(log, thread, number, Marshal.GetPInvokeErrorMessage(errno));
        }
    }
}
