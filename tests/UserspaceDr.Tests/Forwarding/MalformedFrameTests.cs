using System.Buffers.Binary;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>Every malformed or foreign frame gets a defined, counted outcome, and never throws.</summary>
public class MalformedFrameTests
{
    private static EngineHarness Lab(bool answerArp = false) => new(
        EngineHarness.Service(servers: [(Frames.Rs1, 1)]), options: new EngineOptions { LocalMac = Frames.UdrMac(Frames.BalancerMac), AnswerArpForVirtualAddresses = answerArp });

    private static byte[] Syn() => Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true);

    private static byte[] WithIpChecksum(byte[] frame)
    {
        new Ipv4Header(frame.AsSpan(14)).RecomputeHeaderChecksum();
        return frame;
    }

    private static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData(Syn()[..13], FrameReason.EthernetTruncated).SetName("ethernet truncated");
        yield return new TestCaseData(Syn()[..30], FrameReason.IpTruncated).SetName("ip header truncated");
        byte[] v6 = Syn(); v6[14] = 0x65;
        yield return new TestCaseData(v6, FrameReason.IpVersionInvalid).SetName("ip version 6 under ethertype 0x0800");
        byte[] ihl4 = Syn(); ihl4[14] = 0x44;
        yield return new TestCaseData(ihl4, FrameReason.IpHeaderLengthInvalid).SetName("ihl < 5");
        byte[] ihlLong = Syn()[..40]; ihlLong[14] = 0x4F;
        yield return new TestCaseData(ihlLong, FrameReason.IpTruncated).SetName("ihl beyond frame");
        byte[] longTotal = Syn(); BinaryPrimitives.WriteUInt16BigEndian(longTotal.AsSpan(16), 1000);
        yield return new TestCaseData(WithIpChecksum(longTotal), FrameReason.IpTotalLengthInvalid).SetName("total length beyond frame");
        byte[] shortTotal = Syn(); BinaryPrimitives.WriteUInt16BigEndian(shortTotal.AsSpan(16), 12);
        yield return new TestCaseData(WithIpChecksum(shortTotal), FrameReason.IpTotalLengthInvalid).SetName("total length below header");
        byte[] badSum = Syn(); badSum[24] ^= 0xFF;
        yield return new TestCaseData(badSum, FrameReason.IpChecksumInvalid).SetName("bad ip checksum");
        byte[] truncatedTcp = Syn(); BinaryPrimitives.WriteUInt16BigEndian(truncatedTcp.AsSpan(16), 20 + 10);
        yield return new TestCaseData(WithIpChecksum(truncatedTcp), FrameReason.TransportTruncated).SetName("tcp header truncated by total length");
        byte[] badOffset = Syn(); badOffset[14 + 20 + 12] = 0x30;
        yield return new TestCaseData(badOffset, FrameReason.TransportTruncated).SetName("tcp data offset < 5");
        yield return new TestCaseData(Frames.Tcp(Frames.Client, 40000, "198.18.0.200", 80, syn: true), FrameReason.NotForVirtualAddress).SetName("not for a vip");
        yield return new TestCaseData(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 81, syn: true), FrameReason.NoVirtualService).SetName("vip, port without service");
        yield return new TestCaseData(Frames.Udp(Frames.Client, 40000, Frames.Vip, 80, [1]), FrameReason.NoVirtualService).SetName("vip, udp to a tcp service");
        yield return new TestCaseData(Frames.Tcp(Frames.Vip, 40000, Frames.Vip, 80, syn: true), FrameReason.SourceIsVirtualAddress).SetName("source is the vip");
        byte[] otherHost = Syn(); otherHost[0] = 0x02; otherHost[5] = 0x99;
        yield return new TestCaseData(otherHost, FrameReason.NotForThisHost).SetName("another host's unicast");
        byte[] ipv6 = Syn(); ipv6[12] = 0x86; ipv6[13] = 0xDD;
        yield return new TestCaseData(ipv6, FrameReason.IpVersionInvalid).SetName("ipv4 bytes under the ipv6 ethertype");
        byte[] gre = Syn(); gre[14 + 9] = 47;
        yield return new TestCaseData(WithIpChecksum(gre), FrameReason.OtherProtocol).SetName("other ip protocol to the vip");
        byte[] truncatedVlan = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true, vlan: 7)[..16];
        yield return new TestCaseData(truncatedVlan, FrameReason.EthernetTruncated).SetName("vlan tag truncated");
    }

    [TestCaseSource(nameof(Cases))]
    public void Frame_gets_its_named_reason_and_is_counted(byte[] frame, FrameReason expected)
    {
        var lab = Lab();
        Assert.That(lab.Process(frame), Is.EqualTo(expected));
        Assert.That(lab.Engine.Counters[expected], Is.EqualTo(1));
        Assert.That(lab.Engine.Connections.Count, Is.Zero);
    }

    [Test]
    public void Every_prefix_of_a_valid_frame_is_handled_without_throwing()
    {
        var lab = Lab();
        byte[] full = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true, payload: new byte[40], vlan: 3);
        for (int length = 0; length <= full.Length; length++)
        {
            byte[] frame = full[..length];
            Assert.DoesNotThrow(() => lab.Process(frame), $"prefix of {length} bytes");
        }
        long total = Enum.GetValues<FrameReason>().Sum(r => lab.Engine.Counters[r]);
        Assert.That(total, Is.EqualTo(full.Length + 1), "exactly one counted reason per frame");
    }

    [Test]
    public void Random_garbage_never_throws()
    {
        var lab = Lab(answerArp: true);
        var random = new Random(11);
        byte[] frame = new byte[200];
        for (int i = 0; i < 20_000; i++)
        {
            random.NextBytes(frame);
            // Aim a third of them at the parser's interesting paths.
            if (i % 3 == 0)
            {
                frame[12] = 0x08;
                frame[13] = (byte)(i % 2 == 0 ? 0x00 : 0x06);
                Frames.BalancerMac.GetAddressBytes().CopyTo(frame, 0);
                BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(30), Ipv4Address.Parse(Frames.Vip));
            }
            int length = random.Next(0, frame.Length + 1);
            Assert.DoesNotThrow(() => lab.Process(frame[..length]));
        }
    }

    [Test]
    public void Arp_for_a_vip_is_answered_only_when_configured()
    {
        byte[] request = ArpRequest(Frames.Vip);
        Assert.That(Lab().Process(request), Is.EqualTo(FrameReason.ArpNotForVirtualAddress), "the kernel owns the VIP by default");
        var lab = Lab(answerArp: true);
        Assert.That(lab.Process(request), Is.EqualTo(FrameReason.ArpReply));
        var reply = (PacketDotNet.EthernetPacket)PacketDotNet.Packet.ParsePacket(PacketDotNet.LinkLayers.Ethernet, lab.Reply[..lab.ReplyLength]);
        var arp = reply.Extract<PacketDotNet.ArpPacket>();
        Assert.That(arp.Operation, Is.EqualTo(PacketDotNet.ArpOperation.Response));
        Assert.That(arp.SenderHardwareAddress, Is.EqualTo(Frames.BalancerMac));
        Assert.That(arp.SenderProtocolAddress.ToString(), Is.EqualTo(Frames.Vip));
        Assert.That(arp.TargetHardwareAddress, Is.EqualTo(Frames.ClientMac));
        Assert.That(reply.DestinationHardwareAddress, Is.EqualTo(Frames.ClientMac));
        Assert.That(lab.Process(ArpRequest("198.18.0.50")), Is.EqualTo(FrameReason.ArpNotForVirtualAddress));
        Assert.That(lab.Process(ArpRequest(Frames.Vip)[..30]), Is.EqualTo(FrameReason.ArpMalformed));
    }

    internal static byte[] ArpRequest(string target)
    {
        var arp = new PacketDotNet.ArpPacket(PacketDotNet.ArpOperation.Request, System.Net.NetworkInformation.PhysicalAddress.Parse("00-00-00-00-00-00"),
            System.Net.IPAddress.Parse(target), Frames.ClientMac, System.Net.IPAddress.Parse(Frames.Client));
        var ethernet = new PacketDotNet.EthernetPacket(Frames.ClientMac, Frames.Mac("ff:ff:ff:ff:ff:ff"), PacketDotNet.EthernetType.Arp) { PayloadPacket = arp };
        return ethernet.Bytes;
    }

    [Test]
    public void Icmp_error_about_a_tracked_reply_is_relayed_to_the_real_server()
    {
        var lab = Lab();
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true));
        // A router on the client's path tells the VIP that the server's reply (VIP:80 -> client:40000) was too big.
        byte[] replyFromServer = Frames.Tcp(Frames.Vip, 80, Frames.Client, 40000, ack: true, payload: new byte[100]);
        var icmp = new PacketDotNet.IcmpV4Packet(new PacketDotNet.Utils.ByteArraySegment(new byte[8 + 28]))
        {
            TypeCode = PacketDotNet.IcmpV4TypeCode.UnreachableFragmentationNeeded,
        };
        replyFromServer.AsSpan(14, 28).CopyTo(icmp.Bytes.AsSpan(8));
        var ip = new PacketDotNet.IPv4Packet(System.Net.IPAddress.Parse("198.18.0.254"), System.Net.IPAddress.Parse(Frames.Vip)) { PayloadPacket = icmp };
        icmp.UpdateIcmpChecksum();
        ip.UpdateIPChecksum();
        byte[] frame = Frames.Ethernet(ip, null);
        Assert.That(lab.Process(frame), Is.EqualTo(FrameReason.ForwardedIcmpError));
        Assert.That(Frames.Decode(frame).Ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac));

        byte[] untracked = Frames.Tcp(Frames.Vip, 80, Frames.Client, 40001, ack: true);
        untracked.AsSpan(14, 28).CopyTo(icmp.Bytes.AsSpan(8));
        icmp.UpdateIcmpChecksum();
        ip.UpdateIPChecksum();
        Assert.That(lab.Process(Frames.Ethernet(ip, null)), Is.EqualTo(FrameReason.IcmpErrorNotTracked));
    }

    [Test]
    public void Ping_to_the_vip_is_left_to_the_kernel()
    {
        var echo = new PacketDotNet.IcmpV4Packet(new PacketDotNet.Utils.ByteArraySegment(new byte[16])) { TypeCode = PacketDotNet.IcmpV4TypeCode.EchoRequest };
        var ip = new PacketDotNet.IPv4Packet(System.Net.IPAddress.Parse(Frames.Client), System.Net.IPAddress.Parse(Frames.Vip)) { PayloadPacket = echo };
        echo.UpdateIcmpChecksum();
        ip.UpdateIPChecksum();
        Assert.That(Lab().Process(Frames.Ethernet(ip, null)), Is.EqualTo(FrameReason.IcmpForVirtualAddress));
    }

    [Test]
    public void Reasons_map_to_one_verdict_each_and_have_kebab_names()
    {
        Assert.That(FrameReasons.VerdictOf(FrameReason.Forwarded), Is.EqualTo(Verdict.Transmit));
        Assert.That(FrameReasons.VerdictOf(FrameReason.IcmpPortUnreachable), Is.EqualTo(Verdict.Reply));
        Assert.That(FrameReasons.VerdictOf(FrameReason.NoVirtualService), Is.EqualTo(Verdict.Pass));
        Assert.That(FrameReasons.VerdictOf(FrameReason.IpChecksumInvalid), Is.EqualTo(Verdict.Drop));
        Assert.That(FrameReasons.Name(FrameReason.IpChecksumInvalid), Is.EqualTo("ip-checksum-invalid"));
        _ = ServiceProtocol.Tcp;
    }
}
