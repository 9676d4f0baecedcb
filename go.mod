module gatemq

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/eclipse/paho.golang v0.23.0 // indirect
)
