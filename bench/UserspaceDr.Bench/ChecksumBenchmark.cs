using BenchmarkDotNet.Attributes;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Bench;

/// <summary>
/// Core's Internet checksum: the full RFC 1071 sum (<see cref="Checksum.Compute"/>) over 20 bytes (an IPv4 header),
/// 64 and 1500 bytes; and the RFC 1624 incremental update for a 32-bit field (an address rewrite), measured as a
/// dependent chain of 1024 updates (each uses the previous result), i.e. latency per update.
/// </summary>
[MemoryDiagnoser]
public class ChecksumBenchmark
{
    private const int UpdatesPerInvoke = 1024;
    private readonly byte[] _data = new byte[1500];
    private readonly uint[] _oldValues = new uint[UpdatesPerInvoke];
    private readonly uint[] _newValues = new uint[UpdatesPerInvoke];

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1071);
        random.NextBytes(_data);
        for (int i = 0; i < UpdatesPerInvoke; i++)
        {
            _oldValues[i] = (uint)random.Next();
            _newValues[i] = (uint)random.Next();
        }
    }

    [Benchmark]
    [Arguments(20)]
    [Arguments(64)]
    [Arguments(1500)]
    public ushort Full(int length) => Checksum.Compute(_data.AsSpan(0, length));

    [Benchmark(OperationsPerInvoke = UpdatesPerInvoke)]
    public ushort Incremental32()
    {
        uint[] oldValues = _oldValues;
        uint[] newValues = _newValues;
        ushort checksum = 0x1234;
        for (int i = 0; i < oldValues.Length && i < newValues.Length; i++)
        {
            checksum = Checksum.Update(checksum, oldValues[i], newValues[i]);
        }
        return checksum;
    }
}
