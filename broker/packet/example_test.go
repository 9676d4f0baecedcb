package packet_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"

	"gatemq/broker/packet"
)

// Encode a v5 PUBLISH into a reusable buffer, as the broker's writer does.
func ExampleAppend() {
	pk := &packet.Publish{
		QoS:      1,
		Topic:    "sensors/1/temp",
		PacketID: 7,
		Properties: packet.Properties{
			Present:       1 << packet.PropMessageExpiry,
			MessageExpiry: 60,
		},
		Payload: []byte("21.5"),
	}
	buf := make([]byte, 0, 256)
	buf = packet.Append(buf[:0], pk, packet.V5)
	fmt.Printf("% x\n", buf)
	fmt.Println(len(buf) == packet.Size(pk, packet.V5))
	// Output:
	// 32 1c 00 0e 73 65 6e 73 6f 72 73 2f 31 2f 74 65 6d 70 00 07 05 02 00 00 00 3c 32 31 2e 35
	// true
}

// Read packets from a stream and find the reason code of a bad one.
func ExampleRead() {
	var stream []byte
	stream = packet.Append(stream, &packet.Publish{Topic: "a/b", Payload: []byte("hi")}, packet.V311)
	stream = append(stream, 0x30, 0x05, 0x00, 0x03, 'a', '/', '#') // wildcard in a topic name
	r := bufio.NewReader(bytes.NewReader(stream))

	pk, err := packet.Read(r, packet.V311, 1<<20)
	if err != nil {
		fmt.Println(err)
		return
	}
	p := pk.(*packet.Publish)
	fmt.Printf("%s %q %q\n", pk.Type(), p.Topic, p.Payload)

	_, err = packet.Read(r, packet.V311, 1<<20)
	var reason packet.Reason
	if errors.As(err, &reason) {
		fmt.Printf("%v (0x%02x)\n", err, byte(reason))
	}
	// Output:
	// PUBLISH "a/b" "hi"
	// decode PUBLISH: read topic name: wildcard character: topic name invalid (0x90)
}
