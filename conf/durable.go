package conf

import "time"

// DurableSessions configures durable sessions. Table [durable_sessions].
type DurableSessions struct {
	// Enable makes persistent sessions (v5 Session Expiry Interval > 0,
	// or 3.x clean session 0 with mqtt.session_expiry_interval > 0)
	// durable: kept on disk with the messages for them, surviving
	// restarts and crashes. Ephemeral sessions always live in RAM. A
	// listener can override it. Key durable_sessions.enable; default true.
	Enable bool `toml:"enable"`

	// BatchSize is how many stored messages a durable session reads
	// ahead, 1 to 65535. Key durable_sessions.batch_size; default 100.
	BatchSize int `toml:"batch_size"`
}

// DurableStorage configures the message store under data_dir/ds. Table
// [durable_storage].
type DurableStorage struct {
	// NShards is the number of shards messages are split into by
	// publisher, 1 to 1024; fixed when the store is first created. Key
	// durable_storage.n_shards; default 1 (see boltstore's
	// package documentation, "Shards and pages").
	NShards int `toml:"n_shards"`

	// GenerationInterval is the time slice of one generation file,
	// at least 1m. Key durable_storage.generation_interval; default "1h".
	GenerationInterval Duration `toml:"generation_interval"`

	// MessageRetentionPeriod is how long stored messages are kept after
	// their generation ends; older generations are deleted whole. At
	// least 1m. Key durable_storage.message_retention_period; default
	// "24h".
	MessageRetentionPeriod Duration `toml:"message_retention_period"`

	// BatchSize closes a write batch (one fsync) at this many messages,
	// 1 to 65536. Key durable_storage.batch_size; default 256.
	BatchSize int `toml:"batch_size"`

	// FlushInterval closes a write batch this long after its first
	// message, 1us to 1s. Key durable_storage.flush_interval; default
	// "1ms".
	FlushInterval Duration `toml:"flush_interval"`

	// MaxBytes caps the store's files; messages for durable sessions
	// beyond it are refused (v5 0x97). 0 means no cap. Key
	// durable_storage.max_bytes; default "0".
	MaxBytes Size `toml:"max_bytes"`
}

func defaultDurableSessions() DurableSessions {
	return DurableSessions{Enable: true, BatchSize: 100}
}

func defaultDurableStorage() DurableStorage {
	return DurableStorage{
		NShards:                1,
		GenerationInterval:     Duration(time.Hour),
		MessageRetentionPeriod: Duration(24 * time.Hour),
		BatchSize:              256,
		FlushInterval:          Duration(time.Millisecond),
	}
}

func (v *validator) durable(ds DurableSessions, st DurableStorage) {
	v.intRange("durable_sessions.batch_size", int64(ds.BatchSize), 1, 65535)
	v.intRange("durable_storage.n_shards", int64(st.NShards), 1, 1024)
	v.durationRange("durable_storage.generation_interval", st.GenerationInterval, Duration(time.Minute), Duration(365*24*time.Hour))
	v.durationRange("durable_storage.message_retention_period", st.MessageRetentionPeriod, Duration(time.Minute), Duration(10*365*24*time.Hour))
	v.intRange("durable_storage.batch_size", int64(st.BatchSize), 1, 65536)
	v.durationRange("durable_storage.flush_interval", st.FlushInterval, Duration(time.Microsecond), Duration(time.Second))
	v.sizeRange("durable_storage.max_bytes", st.MaxBytes, 0, 1<<50)
}
