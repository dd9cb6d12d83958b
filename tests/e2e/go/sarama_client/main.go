// A small command-line driver of sarama (Debian's golang-github-shopify-sarama-dev)
// for the end-to-end tests (tests/e2e/test_sarama.py). Every command prints
// JSON lines on stdout and exits non-zero on any error, with the error on
// stderr. Every loop is bounded by -timeout.
//
//	produce -brokers B -topic T -count N -codec C -mode sync|async
//	consume -brokers B -topic T              (partition consumers, oldest to the high watermark)
//	group   -brokers B -topic T -group G -count N
//	admin   -brokers B -topic T -partitions P [-group G -group-topic T2 -group-partitions N]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type record struct {
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key"`
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "sarama_client: "+format+"\n", args...)
	os.Exit(1)
}

func emit(v interface{}) {
	line, err := json.Marshal(v)
	if err != nil {
		fail("json: %v", err)
	}
	fmt.Println(string(line))
}

func newConfig(clientID string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = clientID
	cfg.Version = sarama.V2_1_0_0 // the newest this sarama knows well; zstd needs 2.1
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 200 * time.Millisecond
	cfg.Net.DialTimeout = 10 * time.Second
	return cfg
}

func codecOf(name string) sarama.CompressionCodec {
	switch name {
	case "none":
		return sarama.CompressionNone
	case "gzip":
		return sarama.CompressionGZIP
	case "snappy":
		return sarama.CompressionSnappy
	case "lz4":
		return sarama.CompressionLZ4
	case "zstd":
		return sarama.CompressionZSTD
	}
	fail("unknown codec %q", name)
	return sarama.CompressionNone
}

func message(topic, tag string, i int) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{
		Topic:    topic,
		Key:      sarama.StringEncoder(fmt.Sprintf("key-%d", i%7)),
		Value:    sarama.StringEncoder(fmt.Sprintf("%s-%06d-%s", tag, i, strings.Repeat("x", i%40))),
		Headers:  []sarama.RecordHeader{{Key: []byte("seq"), Value: []byte(fmt.Sprint(i))}},
		Metadata: i,
	}
}

func sent(m *sarama.ProducerMessage) record {
	key, _ := m.Key.Encode()
	value, _ := m.Value.Encode()
	return record{Partition: m.Partition, Offset: m.Offset, Key: string(key), Value: string(value),
		Headers: map[string]string{"seq": fmt.Sprint(m.Metadata)}}
}

func produce(args []string) {
	fs := flag.NewFlagSet("produce", flag.ExitOnError)
	brokers := fs.String("brokers", "", "")
	topic := fs.String("topic", "", "")
	count := fs.Int("count", 100, "")
	codec := fs.String("codec", "none", "")
	mode := fs.String("mode", "sync", "sync or async")
	timeout := fs.Duration("timeout", 60*time.Second, "")
	fs.Parse(args)

	cfg := newConfig("hf-sarama-producer")
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Compression = codecOf(*codec)
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Flush.Messages = 10 // several batches, several messages each
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	tag := fmt.Sprintf("%s-%s", *mode, *codec)

	if *mode == "sync" {
		producer, err := sarama.NewSyncProducer(strings.Split(*brokers, ","), cfg)
		if err != nil {
			fail("sync producer: %v", err)
		}
		var batch []*sarama.ProducerMessage
		for i := 0; i < *count; i++ {
			batch = append(batch, message(*topic, tag, i))
		}
		// Half as one SendMessages call, the rest one SendMessage each.
		half := len(batch) / 2
		if err := producer.SendMessages(batch[:half]); err != nil {
			fail("SendMessages: %v", err)
		}
		for _, m := range batch[half:] {
			if _, _, err := producer.SendMessage(m); err != nil {
				fail("SendMessage: %v", err)
			}
		}
		if err := producer.Close(); err != nil {
			fail("close: %v", err)
		}
		for _, m := range batch {
			emit(sent(m))
		}
		return
	}

	producer, err := sarama.NewAsyncProducer(strings.Split(*brokers, ","), cfg)
	if err != nil {
		fail("async producer: %v", err)
	}
	done := make(map[int]record)
	deadline := time.After(*timeout)
	go func() {
		for i := 0; i < *count; i++ {
			producer.Input() <- message(*topic, tag, i)
		}
	}()
	for len(done) < *count {
		select {
		case m := <-producer.Successes():
			done[m.Metadata.(int)] = sent(m)
		case e := <-producer.Errors():
			fail("async produce of message %v: %v", e.Msg.Metadata, e.Err)
		case <-deadline:
			fail("async: %d of %d acknowledged within %v", len(done), *count, *timeout)
		}
	}
	if err := producer.Close(); err != nil {
		fail("close: %v", err)
	}
	for i := 0; i < *count; i++ {
		emit(done[i])
	}
}

func consume(args []string) {
	fs := flag.NewFlagSet("consume", flag.ExitOnError)
	brokers := fs.String("brokers", "", "")
	topic := fs.String("topic", "", "")
	timeout := fs.Duration("timeout", 60*time.Second, "")
	fs.Parse(args)

	client, err := sarama.NewClient(strings.Split(*brokers, ","), newConfig("hf-sarama-consumer"))
	if err != nil {
		fail("client: %v", err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail("consumer: %v", err)
	}
	defer consumer.Close()
	partitions, err := consumer.Partitions(*topic)
	if err != nil {
		fail("partitions: %v", err)
	}
	deadline := time.After(*timeout)
	for _, p := range partitions {
		end, err := client.GetOffset(*topic, p, sarama.OffsetNewest)
		if err != nil {
			fail("high watermark of %d: %v", p, err)
		}
		start, err := client.GetOffset(*topic, p, sarama.OffsetOldest)
		if err != nil {
			fail("log start of %d: %v", p, err)
		}
		if end <= start {
			continue
		}
		pc, err := consumer.ConsumePartition(*topic, p, sarama.OffsetOldest)
		if err != nil {
			fail("consume partition %d: %v", p, err)
		}
		for next := start; next < end; {
			select {
			case m := <-pc.Messages():
				r := record{Partition: m.Partition, Offset: m.Offset, Key: string(m.Key),
					Value: string(m.Value), Headers: map[string]string{}}
				for _, h := range m.Headers {
					r.Headers[string(h.Key)] = string(h.Value)
				}
				emit(r)
				next = m.Offset + 1
			case e := <-pc.Errors():
				fail("partition %d: %v", p, e.Err)
			case <-deadline:
				fail("partition %d: not read to %d within %v", p, end, *timeout)
			}
		}
		pc.Close()
	}
}

// groupHandler marks (and so commits) exactly `limit` messages in all, then
// cancels the session.
type groupHandler struct {
	mu     sync.Mutex
	limit  int
	got    []record
	cancel context.CancelFunc
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		if len(h.got) >= h.limit {
			h.mu.Unlock()
			return nil
		}
		h.got = append(h.got, record{Partition: m.Partition, Offset: m.Offset, Key: string(m.Key),
			Value: string(m.Value)})
		sess.MarkMessage(m, "")
		full := len(h.got) >= h.limit
		h.mu.Unlock()
		if full {
			h.cancel()
			return nil
		}
	}
	return nil
}

func group(args []string) {
	fs := flag.NewFlagSet("group", flag.ExitOnError)
	brokers := fs.String("brokers", "", "")
	topic := fs.String("topic", "", "")
	groupID := fs.String("group", "", "")
	count := fs.Int("count", 10, "")
	timeout := fs.Duration("timeout", 60*time.Second, "")
	fs.Parse(args)

	cfg := newConfig("hf-sarama-group")
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Strategy = sarama.BalanceStrategyRange
	cg, err := sarama.NewConsumerGroup(strings.Split(*brokers, ","), *groupID, cfg)
	if err != nil {
		fail("consumer group: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	handler := &groupHandler{limit: *count, cancel: cancel}
	go func() {
		for e := range cg.Errors() {
			fmt.Fprintf(os.Stderr, "sarama_client: group error: %v\n", e)
		}
	}()
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{*topic}, handler); err != nil &&
			!errors.Is(err, context.Canceled) {
			fail("consume: %v", err)
		}
	}
	// Close commits what was marked and leaves the group.
	if err := cg.Close(); err != nil {
		fail("close: %v", err)
	}
	handler.mu.Lock()
	defer handler.mu.Unlock()
	if len(handler.got) < *count {
		fail("group consumed %d of %d within %v", len(handler.got), *count, *timeout)
	}
	for _, r := range handler.got {
		emit(r)
	}
}

func admin(args []string) {
	fs := flag.NewFlagSet("admin", flag.ExitOnError)
	brokers := fs.String("brokers", "", "")
	topic := fs.String("topic", "", "")
	partitions := fs.Int("partitions", 3, "")
	groupID := fs.String("group", "", "a group to describe and list offsets of (optional)")
	groupTopic := fs.String("group-topic", "", "the topic whose offsets the group committed")
	groupPartitions := fs.Int("group-partitions", 1, "")
	fs.Parse(args)

	ca, err := sarama.NewClusterAdmin(strings.Split(*brokers, ","), newConfig("hf-sarama-admin"))
	if err != nil {
		fail("cluster admin: %v", err)
	}
	defer ca.Close()
	retention := "3600000"
	policy := "compact"
	err = ca.CreateTopic(*topic, &sarama.TopicDetail{
		NumPartitions: int32(*partitions), ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention, "cleanup.policy": &policy},
	}, false)
	if err != nil {
		fail("create topic: %v", err)
	}
	err = ca.CreateTopic(*topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	emit(map[string]interface{}{"op": "create_again", "error": fmt.Sprint(err)})

	topics, err := ca.ListTopics()
	if err != nil {
		fail("list topics: %v", err)
	}
	detail, listed := topics[*topic]
	emit(map[string]interface{}{"op": "list", "listed": listed, "partitions": detail.NumPartitions})

	described, err := ca.DescribeTopics([]string{*topic})
	if err != nil {
		fail("describe topics: %v", err)
	}
	for _, t := range described {
		var ids []int
		for _, p := range t.Partitions {
			ids = append(ids, int(p.ID))
		}
		sort.Ints(ids)
		emit(map[string]interface{}{"op": "describe", "topic": t.Name, "error": int(t.Err),
			"partitions": ids})
	}

	entries, err := ca.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: *topic})
	if err != nil {
		fail("describe config: %v", err)
	}
	configs := map[string]string{}
	for _, e := range entries {
		configs[e.Name] = e.Value
	}
	emit(map[string]interface{}{"op": "configs", "configs": configs})

	if err := ca.CreatePartitions(*topic, int32(*partitions+1), nil, false); err != nil {
		fail("create partitions: %v", err)
	}
	brokerList, controller, err := ca.DescribeCluster()
	if err != nil {
		fail("describe cluster: %v", err)
	}
	emit(map[string]interface{}{"op": "cluster", "brokers": len(brokerList), "controller": controller})

	if *groupID != "" {
		groups, err := ca.ListConsumerGroups()
		if err != nil {
			fail("list groups: %v", err)
		}
		descriptions, err := ca.DescribeConsumerGroups([]string{*groupID})
		if err != nil {
			fail("describe groups: %v", err)
		}
		var ids []int32
		for p := 0; p < *groupPartitions; p++ {
			ids = append(ids, int32(p))
		}
		offsets, err := ca.ListConsumerGroupOffsets(*groupID, map[string][]int32{*groupTopic: ids})
		if err != nil {
			fail("list group offsets: %v", err)
		}
		committed := map[string]int64{}
		for t, blocks := range offsets.Blocks {
			for p, b := range blocks {
				committed[fmt.Sprintf("%s/%d", t, p)] = b.Offset
			}
		}
		emit(map[string]interface{}{"op": "groups", "listed": groups[*groupID],
			"state": descriptions[0].State, "error": int(descriptions[0].Err), "committed": committed})
	}

	if err := ca.DeleteTopic(*topic); err != nil {
		fail("delete topic: %v", err)
	}
	emit(map[string]interface{}{"op": "deleted"})
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: sarama_client produce|consume|group|admin [flags]")
	}
	switch os.Args[1] {
	case "produce":
		produce(os.Args[2:])
	case "consume":
		consume(os.Args[2:])
	case "group":
		group(os.Args[2:])
	case "admin":
		admin(os.Args[2:])
	default:
		fail("unknown command %q", os.Args[1])
	}
}
