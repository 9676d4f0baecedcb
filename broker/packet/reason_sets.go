package packet

// reasonSet is a set of reason codes, one bit per code.
type reasonSet [4]uint64

func newReasonSet(rs ...Reason) reasonSet {
	var s reasonSet
	for _, r := range rs {
		s[r>>6] |= 1 << (r & 63)
	}
	return s
}

func (s *reasonSet) has(r Reason) bool { return s[r>>6]&(1<<(r&63)) != 0 }

// The reason codes each v5 packet may carry [MQTT-2.4 table 2-6 and the
// Reason Code section of each packet]. A code outside its packet's set is
// treated as a Malformed Packet: the receiver cannot say what it means.
var (
	connackReasons = newReasonSet(Success, UnspecifiedError, MalformedPacket, ProtocolError,
		ImplementationSpecificError, UnsupportedProtocolVersion, ClientIdentifierNotValid,
		BadUserNameOrPassword, NotAuthorized, ServerUnavailable, ServerBusy, Banned,
		BadAuthenticationMethod, TopicNameInvalid, PacketTooLarge, QuotaExceeded,
		PayloadFormatInvalid, RetainNotSupported, QoSNotSupported, UseAnotherServer,
		ServerMoved, ConnectionRateExceeded) // v5 3.2.2.2

	// PUBACK (v5 3.4.2.1) and PUBREC (v5 3.5.2.1).
	pubackReasons = newReasonSet(Success, NoMatchingSubscribers, UnspecifiedError,
		ImplementationSpecificError, NotAuthorized, TopicNameInvalid, PacketIdentifierInUse,
		QuotaExceeded, PayloadFormatInvalid)

	// PUBREL (v5 3.6.2.1) and PUBCOMP (v5 3.7.2.1).
	pubrelReasons = newReasonSet(Success, PacketIdentifierNotFound)

	subackReasons = newReasonSet(GrantedQoS0, GrantedQoS1, GrantedQoS2, UnspecifiedError,
		ImplementationSpecificError, NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse,
		QuotaExceeded, SharedSubscriptionsNotSupported, SubscriptionIdentifiersNotSupported,
		WildcardSubscriptionsNotSupported) // v5 3.9.3

	unsubackReasons = newReasonSet(Success, NoSubscriptionExisted, UnspecifiedError,
		ImplementationSpecificError, NotAuthorized, TopicFilterInvalid,
		PacketIdentifierInUse) // v5 3.11.3

	disconnectReasons = newReasonSet(NormalDisconnection, DisconnectWithWill,
		UnspecifiedError, MalformedPacket, ProtocolError, ImplementationSpecificError,
		NotAuthorized, ServerBusy, ServerShuttingDown, KeepAliveTimeout, SessionTakenOver,
		TopicFilterInvalid, TopicNameInvalid, ReceiveMaximumExceeded, TopicAliasInvalid,
		PacketTooLarge, MessageRateTooHigh, QuotaExceeded, AdministrativeAction,
		PayloadFormatInvalid, RetainNotSupported, QoSNotSupported, UseAnotherServer,
		ServerMoved, SharedSubscriptionsNotSupported, ConnectionRateExceeded,
		MaximumConnectTime, SubscriptionIdentifiersNotSupported,
		WildcardSubscriptionsNotSupported) // v5 3.14.2.1

	authReasons = newReasonSet(Success, ContinueAuthentication, ReAuthenticate) // v5 3.15.2.1
)
