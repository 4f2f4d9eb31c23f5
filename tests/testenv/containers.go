package testenv

// Backend (b): genuine MongoDB and Apache Kafka in containers, through
// testcontainers-go, for machines with a Docker engine.
//
//	LOGBRIDGE_TESTCONTAINERS=1 go test ./...
//
// starts, once per test binary:
//   - two single-node replica sets from the official `mongo:8` image (source,
//     replica set "rs-source"; destination, "rs-dest"), reached with
//     directConnection=true because the member name in the replica set config is
//     the container's bridge address, which the host may not route to;
//   - one `apache/kafka:4.1.0` broker (KRaft, broker and controller in one node)
//     whose client listener is advertised at the host-mapped port.
//
// An explicit KAFKA_BROKERS, SOURCE_URI or DEST_URI still wins: only the servers
// not named by the environment are started. The schema registry is not
// containerised; it comes from SCHEMA_REGISTRY_URL or the local stack.
//
// When LOGBRIDGE_TESTCONTAINERS=1 but no Docker engine answers (DOCKER_HOST,
// the default socket, ~/.testcontainers.properties), every test that asks
// testenv for servers is skipped with that reason, or fails under
// LOGBRIDGE_REQUIRE_STACK=1. Containers are removed by testcontainers' reaper
// (Ryuk) when the test binary exits; with TESTCONTAINERS_RYUK_DISABLED=true
// they are left running (labelled org.testcontainers=true).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/mongodb"
	"github.com/testcontainers/testcontainers-go/wait"
	"golang.org/x/sync/errgroup"
)

// Images used by the containers backend.
const (
	ContainersVar  = "LOGBRIDGE_TESTCONTAINERS"
	MongoImage     = "mongo:8"
	KafkaImage     = "apache/kafka:4.1.0"
	containersWait = 5 * time.Minute // first run pulls the images
)

// containersWanted reports whether the containers backend was asked for.
func containersWanted() bool { return os.Getenv(ContainersVar) == "1" }

// withContainers replaces the local-stack defaults in e by containers, for the
// servers the environment does not name explicitly.
func withContainers(e Env) (Env, error) {
	needKafka := os.Getenv("KAFKA_BROKERS") == ""
	needSource := os.Getenv("SOURCE_URI") == ""
	needDest := os.Getenv("DEST_URI") == ""
	if !needKafka && !needSource && !needDest {
		return e, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), containersWait)
	defer cancel()
	if err := dockerHealth(ctx); err != nil {
		return e, fmt.Errorf("%s=1 but no Docker engine is reachable (testcontainers looked at DOCKER_HOST, ~/.testcontainers.properties, "+
			"the Docker context, /var/run/docker.sock and rootless sockets; last error: %v): start Docker or set DOCKER_HOST, "+
			"or unset %s to use the local stack (`make up`)", ContainersVar, err, ContainersVar)
	}
	g, gctx := errgroup.WithContext(ctx)
	if needKafka {
		g.Go(func() error {
			addr, err := runKafka(gctx)
			if err != nil {
				return fmt.Errorf("kafka container (%s): %w", KafkaImage, err)
			}
			e.KafkaBrokers = []string{addr}
			return nil
		})
	}
	if needSource {
		g.Go(func() error {
			uri, err := runMongo(gctx, "rs-source")
			if err != nil {
				return fmt.Errorf("source mongo container (%s): %w", MongoImage, err)
			}
			e.SourceURI = uri
			return nil
		})
	}
	if needDest {
		g.Go(func() error {
			uri, err := runMongo(gctx, "rs-dest")
			if err != nil {
				return fmt.Errorf("destination mongo container (%s): %w", MongoImage, err)
			}
			e.DestURI = uri
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return e, fmt.Errorf("%s=1: starting containers: %w", ContainersVar, err)
	}
	return e, nil
}

// dockerHealth pings the Docker engine. testcontainers panics when it cannot
// even find a Docker host; that is turned into an error.
func dockerHealth(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	defer func() { _ = p.Close() }()
	return p.Health(ctx)
}

// runMongo starts a single-node replica set and returns its URI.
func runMongo(ctx context.Context, replSet string) (string, error) {
	c, err := mongodb.Run(ctx, MongoImage, mongodb.WithReplicaSet(replSet))
	if err != nil {
		if c != nil {
			_ = testcontainers.TerminateContainer(c)
		}
		return "", err
	}
	hostPort, err := c.PortEndpoint(ctx, "27017/tcp", "")
	if err != nil {
		return "", err
	}
	return "mongodb://" + hostPort + "/?directConnection=true", nil
}

const (
	kafkaClientPort = "9092/tcp"
	kafkaStarter    = "/tmp/logbridge_kafka_start.sh"
	// The apache/kafka image configures the broker from KAFKA_* variables and
	// starts it with /etc/kafka/docker/run. The advertised client address is
	// the host-mapped port, known only once the container runs: the container
	// waits for this script, copied in by a post-start hook.
	kafkaStarterScript = `#!/bin/bash
export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://%s,BROKER://%s:9093
exec /etc/kafka/docker/run
`
)

// runKafka starts a single-node KRaft broker and returns its bootstrap address.
func runKafka(ctx context.Context) (string, error) {
	c, err := testcontainers.Run(ctx, KafkaImage,
		testcontainers.WithExposedPorts(kafkaClientPort),
		testcontainers.WithEnv(map[string]string{
			"CLUSTER_ID":                                             "bG9nYnJpZGdlLXRlc3Rlbg",
			"KAFKA_NODE_ID":                                          "1",
			"KAFKA_PROCESS_ROLES":                                    "broker,controller",
			"KAFKA_LISTENERS":                                        "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":                   "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"KAFKA_INTER_BROKER_LISTENER_NAME":                       "BROKER",
			"KAFKA_CONTROLLER_LISTENER_NAMES":                        "CONTROLLER",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                         "1@localhost:9094",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":                 "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":                    "1",
			"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
			"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":                 "0",
			"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                        "false",
		}),
		testcontainers.WithEntrypoint("sh"),
		testcontainers.WithCmd("-c", "while [ ! -f "+kafkaStarter+" ]; do sleep 0.1; done; exec bash "+kafkaStarter),
		testcontainers.WithLifecycleHooks(testcontainers.ContainerLifecycleHooks{
			PostStarts: []testcontainers.ContainerHook{
				func(ctx context.Context, c testcontainers.Container) error {
					if err := wait.ForMappedPort(kafkaClientPort).WaitUntilReady(ctx, c); err != nil {
						return fmt.Errorf("wait for mapped port: %w", err)
					}
					endpoint, err := c.PortEndpoint(ctx, kafkaClientPort, "")
					if err != nil {
						return fmt.Errorf("port endpoint: %w", err)
					}
					inspect, err := c.Inspect(ctx)
					if err != nil {
						return fmt.Errorf("inspect: %w", err)
					}
					script := fmt.Sprintf(kafkaStarterScript, endpoint, inspect.Config.Hostname)
					if err := c.CopyToContainer(ctx, []byte(script), kafkaStarter, 0o755); err != nil {
						return fmt.Errorf("copy starter script: %w", err)
					}
					return wait.ForLog("Kafka Server started").
						WithStartupTimeout(2*time.Minute).WaitUntilReady(ctx, c)
				},
			},
		}),
	)
	if err != nil {
		if c != nil {
			_ = testcontainers.TerminateContainer(c)
		}
		return "", err
	}
	addr, err := c.PortEndpoint(ctx, kafkaClientPort, "")
	if err != nil {
		return "", err
	}
	if addr == "" {
		return "", errors.New("no mapped client port")
	}
	return addr, nil
}
