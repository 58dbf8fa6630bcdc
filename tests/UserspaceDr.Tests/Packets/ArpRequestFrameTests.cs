using System.Net;
using PacketDotNet;
using Udr = UserspaceDr.Core.Packets;

namespace UserspaceDr.Tests.Packets;

/// <summary>The one ARP request builder (the neighbour resolver's and the lab tests'), checked with PacketDotNet.</summary>
public class ArpRequestFrameTests
{
    [Test]
    public void A_request_is_a_padded_broadcast_who_has_from_the_sender()
    {
        byte[] frame = new byte[Udr.ArpPacket.RequestFrameLength + 10];
        frame.AsSpan().Fill(0xEE);
        Udr.MacAddress sender = Udr.MacAddress.Read([2, 0, 0, 0, 0, 2]);
        int length = Udr.ArpPacket.WriteRequestFrame(frame, sender, Udr.Ipv4Address.Parse("198.18.0.2"), Udr.Ipv4Address.Parse("198.18.0.11"));

        var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame[..length]);
        var arp = ethernet.Extract<ArpPacket>();
        Assert.Multiple(() =>
        {
            Assert.That(length, Is.EqualTo(60), "Ethernet's minimum frame");
            Assert.That(ethernet.DestinationHardwareAddress.ToString(), Is.EqualTo("FFFFFFFFFFFF"));
            Assert.That(ethernet.SourceHardwareAddress.ToString(), Is.EqualTo("020000000002"));
            Assert.That(arp.Operation, Is.EqualTo(ArpOperation.Request));
            Assert.That(arp.SenderProtocolAddress, Is.EqualTo(IPAddress.Parse("198.18.0.2")));
            Assert.That(arp.TargetProtocolAddress, Is.EqualTo(IPAddress.Parse("198.18.0.11")));
            Assert.That(arp.TargetHardwareAddress.ToString(), Is.EqualTo("000000000000"));
            Assert.That(frame.AsSpan(42, 18).ToArray(), Is.All.Zero, "padding is zeroed");
            Assert.That(frame[60], Is.EqualTo(0xEE), "nothing written past the frame");
        });
    }
}
