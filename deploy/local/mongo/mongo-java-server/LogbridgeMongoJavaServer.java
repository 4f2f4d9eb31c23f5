// Tiny launcher for de.bwaldvogel:mongo-java-server used by scripts/stack.d/mongo.sh.
// Compiled by the script with javac against the jars resolved from pom.xml.
//
//   java -cp lib/*:classes LogbridgeMongoJavaServer --host 127.0.0.1 --port 27019 \
//        [--backend memory|h2] [--data /path/file.mv] [--version 5.0|4.4|6.0|4.0|3.6] [--no-oplog]
//        [--repl-set-name rs0]
//
// Defaults: memory backend, version 5.0 reported as wire version 13 (the Go driver v2 needs >= 9),
// oplog enabled (that is what makes $changeStream work in mongo-java-server).
//
// --repl-set-name NAME is a shim: hello/isMaster replies also carry setName, hosts, primary,
// me, isWritablePrimary and secondary:false, so clients that insist on a replica set (as
// logbridge's source connector does) accept the server. It adds nothing else: no sessions
// (logicalSessionTimeoutMinutes stays absent, so drivers refuse transactions), no
// $clusterTime/operationTime, no cluster-wide change streams. See docs/testing.md.
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.AbstractUniqueIndex;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.KeyValue;
import de.bwaldvogel.mongo.backend.Missing;
import de.bwaldvogel.mongo.backend.ValueComparator;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Collection;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.wire.bson.BsonDecoder;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import org.h2.mvstore.DataUtils;
import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;
import org.h2.mvstore.WriteBuffer;
import org.h2.mvstore.type.BasicDataType;
import org.h2.mvstore.type.ObjectDataType;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;

import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;

import java.nio.ByteBuffer;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;

public final class LogbridgeMongoJavaServer {
    private static final class Version implements MongoVersion {
        private final List<Integer> array;
        private final int wire;

        Version(List<Integer> array, int wire) {
            this.array = array;
            this.wire = wire;
        }

        @Override
        public List<Integer> getVersionArray() {
            return array;
        }

        @Override
        public int getWireVersion() {
            return wire;
        }
    }

    static String replSetName;
    static String me;

    /** Adds the replica-set fields to a hello/isMaster reply (see --repl-set-name). */
    static Document shim(String command, Document reply) {
        if (replSetName == null || reply == null) {
            return reply;
        }
        if (!command.equalsIgnoreCase("hello") && !command.equalsIgnoreCase("ismaster")) {
            return reply;
        }
        reply.put("setName", replSetName);
        reply.put("hosts", List.of(me));
        reply.put("primary", me);
        reply.put("me", me);
        reply.put("secondary", Boolean.FALSE);
        reply.put("isWritablePrimary", Boolean.TRUE);
        return reply;
    }

    static String commandFor(String command) {
        // mongo-java-server knows isMaster but not hello; answer hello like isMaster.
        return replSetName != null && command.equalsIgnoreCase("hello") ? "ismaster" : command;
    }

    static final class ShimMemoryBackend extends MemoryBackend {
        @Override
        public MemoryDatabase openOrCreateDatabase(String databaseName) {
            return new ShimMemoryDatabase(databaseName, getCursorRegistry());
        }

        @Override
        public Document handleCommand(Channel channel, String database, String command, Document query) {
            return shim(command, super.handleCommand(channel, database, commandFor(command), query));
        }
    }

    static final class ShimMemoryDatabase extends MemoryDatabase {
        ShimMemoryDatabase(String name, CursorRegistry cursors) {
            super(name, cursors);
        }

        @Override
        protected MemoryCollection openOrCreateCollection(String collectionName, CollectionOptions options) {
            return new ShimMemoryCollection(this, collectionName, options, cursorRegistry);
        }
    }

    static final class ShimMemoryCollection extends MemoryCollection {
        ShimMemoryCollection(MongoDatabase database, String name, CollectionOptions options, CursorRegistry cursors) {
            super(database, name, options, cursors);
        }

        @Override
        protected QueryResult matchDocumentsFromStream(Stream<Document> documents, Document query, Document orderBy,
                                                       int skip, int limit, int batchSize, Document projection) {
            Comparator<Document> byId = idOrder(orderBy);
            if (byId == null) {
                return super.matchDocumentsFromStream(documents, query, orderBy, skip, limit, batchSize, projection);
            }
            return matchDocumentsFromStream(query, documents, skip, limit, batchSize, byId, projection);
        }
    }

    /*
     * A find sorted by {_id: 1} -- what mongoshim asks for when it serves a snapshot
     * range read (find with min/max and hint {_id: 1}, which genuine MongoDB answers by
     * walking the _id index) -- is sorted by mongo-java-server's DocumentComparator,
     * which splits the sort path with a regex on every comparison: 18% of the server's
     * CPU in a 200,000-document sorted read (JFR samples). idOrder compares the _id
     * values with the same ValueComparator, without the path splitting, so the order is
     * the same. null: orderBy is not {_id: 1} or {_id: -1}. Test environment only.
     */
    static Comparator<Document> idOrder(Document orderBy) {
        if (orderBy == null || orderBy.size() != 1 || !(orderBy.get("_id") instanceof Number direction)) {
            return null;
        }
        ValueComparator values = direction.intValue() > 0 ? ValueComparator.asc() : ValueComparator.desc();
        return (a, b) -> values.compare(a.getOrMissing("_id"), b.getOrMissing("_id"));
    }

    /*
     * The h2 back end's MVStore maps compare keys that are not Comparable -- an
     * embedded-document _id in a collection's data map, the KeyValue key of every
     * unique index (_id_ included) -- by their Java-serialized bytes, and those depend
     * on a LinkedHashMap's table capacity, not only on its content: two equal _id
     * documents built differently (new Document(map) vs append) compare unequal, a
     * lookup by _id then misses, and an upsert of an existing document fails with
     * E11000 on _id_. ShimH2Database opens those maps with ValueKeyType, which orders
     * keys with mongo-java-server's own ValueComparator (their serialization is
     * unchanged). Test environment only (docs/testing.md).
     */
    static final class ValueKeyType extends ObjectDataType {
        private static final ValueComparator CMP = ValueComparator.ascWithoutListHandling();

        @Override
        public int compare(Object a, Object b) {
            if (a instanceof KeyValue && b instanceof KeyValue) {
                KeyValue x = (KeyValue) a, y = (KeyValue) b;
                for (int i = 0; i < Math.min(x.size(), y.size()); i++) {
                    int c = CMP.compare(x.get(i), y.get(i));
                    if (c != 0) {
                        return c;
                    }
                }
                return Integer.compare(x.size(), y.size());
            }
            return CMP.compare(a, b);
        }
    }

    /*
     * The h2 back end stores documents with Java serialization, which writes doubles
     * with Double.doubleToLongBits: every NaN comes back as the canonical NaN, its
     * payload and sign lost (the memory back end, and MongoDB, keep the 8 bytes). The
     * data maps store documents as BSON instead, with mongo-java-server's own wire
     * encoder and decoder: what is stored is exactly what a client reads back.
     */
    static final class BsonDocumentType extends BasicDataType<Document> {
        @Override
        public int getMemory(Document d) {
            return 512; // an estimate for the page cache; documents here are small
        }

        @Override
        public void write(WriteBuffer buff, Document d) {
            ByteBuf b = Unpooled.buffer();
            try {
                BsonEncoder.encodeDocument(d, b);
                byte[] bytes = new byte[b.readableBytes()];
                b.readBytes(bytes);
                buff.putVarInt(bytes.length).put(bytes);
            } finally {
                b.release();
            }
        }

        @Override
        public Document read(ByteBuffer buff) {
            byte[] bytes = new byte[DataUtils.readVarInt(buff)];
            buff.get(bytes);
            ByteBuf b = Unpooled.wrappedBuffer(bytes);
            try {
                return BsonDecoder.decodeBson(b);
            } finally {
                b.release();
            }
        }

        @Override
        public int compare(Document a, Document b) {
            return a.equals(b) ? 0 : 1; // values are only ever tested for equality
        }

        @Override
        public Document[] createStorage(int size) {
            return new Document[size];
        }
    }

    /** H2UniqueIndex (package-private there) over a map with ValueKeyType keys. */
    static final class ShimH2UniqueIndex extends AbstractUniqueIndex<Object> {
        private final MVMap<KeyValue, Object> map;

        ShimH2UniqueIndex(MVMap<KeyValue, Object> map, String name, List<IndexKey> keys, boolean sparse) {
            super(name, keys, sparse);
            this.map = map;
        }

        @Override
        protected Object removeDocument(KeyValue key) {
            return map.remove(key);
        }

        @Override
        protected boolean putKeyPosition(KeyValue key, Object position) {
            return map.putIfAbsent(key, Missing.ofNullable(position)) == null;
        }

        @Override
        protected Iterable<Map.Entry<KeyValue, Object>> getIterable() {
            return map.entrySet();
        }

        @Override
        protected Object getPosition(KeyValue key) {
            return map.get(key);
        }

        @Override
        public long getCount() {
            return map.sizeAsLong();
        }

        @Override
        public boolean isEmpty() {
            return map.isEmpty();
        }

        @Override
        public long getDataSize() {
            return getCount();
        }
    }

    static final class ShimH2Database extends H2Database {
        // set before the first database opens (H2Database's constructor already
        // opens collections, before a field of this class could be set)
        static volatile MVStore store;

        ShimH2Database(String name, CursorRegistry cursors) {
            super(name, store, cursors);
        }

        @Override
        protected Index<Object> openOrCreateUniqueIndex(String collectionName, String indexName, List<IndexKey> keys, boolean sparse) {
            MVMap<KeyValue, Object> map = store.openMap(getFullCollectionNamespace(collectionName) + "._index_" + indexName,
                new MVMap.Builder<KeyValue, Object>().keyType(new ValueKeyType()));
            return new ShimH2UniqueIndex(map, indexName, keys, sparse);
        }

        @Override
        protected MongoCollection<Object> openOrCreateCollection(String collectionName, CollectionOptions options) {
            String full = getFullCollectionNamespace(collectionName);
            MVMap<Object, Document> data = store.openMap("databases." + full, new MVMap.Builder<Object, Document>().keyType(new ValueKeyType()).valueType(new BsonDocumentType()));
            MVMap<String, Object> meta = store.openMap("meta." + full);
            return new ShimH2Collection(this, collectionName, options, data, meta, cursorRegistry);
        }
    }

    /*
     * H2Collection puts the very Document objects it is handed into the MVStore map and
     * hands the stored objects out again; the store's background writer serializes them
     * later, on its own thread. A document changed in place after it was stored (seen in
     * the e2e suite: ConcurrentModificationException in BsonEncoder, then "This store is
     * closed" for every later write) kills the store. The map holds deep copies here, and
     * readers get deep copies, so a stored document is never shared.
     */
    static final class ShimH2Collection extends H2Collection {
        ShimH2Collection(MongoDatabase db, String name, CollectionOptions options, MVMap<Object, Document> data,
                         MVMap<String, Object> meta, CursorRegistry cursors) {
            super(db, name, options, data, meta, cursors);
        }

        @Override
        protected Object addDocumentInternal(Document document) {
            return super.addDocumentInternal(document.cloneDeeply());
        }

        @Override
        protected void handleUpdate(Object position, Document oldDocument, Document newDocument) {
            super.handleUpdate(position, oldDocument, newDocument.cloneDeeply());
        }

        @Override
        protected Document getDocument(Object position) {
            Document d = super.getDocument(position);
            return d == null ? null : d.cloneDeeply();
        }

        @Override
        protected java.util.stream.Stream<de.bwaldvogel.mongo.backend.DocumentWithPosition<Object>> streamAllDocumentsWithPosition() {
            return super.streamAllDocumentsWithPosition()
                .map(d -> new de.bwaldvogel.mongo.backend.DocumentWithPosition<>(d.getDocument().cloneDeeply(), d.getPosition()));
        }

        @Override
        protected de.bwaldvogel.mongo.backend.QueryResult matchDocuments(Document query, Document orderBy, int skip, int limit,
                                                                        int batchSize, Document projection) {
            if (isNaturalDescending(orderBy)) {
                return super.matchDocuments(query, orderBy, skip, limit, batchSize, projection); // reads streamAllDocumentsWithPosition
            }
            return matchDocumentsFromStream(streamAllDocumentsWithPosition().map(d -> d.getDocument()), query, orderBy, skip, limit,
                batchSize, projection);
        }
    }

    static final class ShimH2Backend extends H2Backend {
        ShimH2Backend(String file) {
            super(openStore(file));
        }

        private static MVStore openStore(String file) {
            MVStore store = new MVStore.Builder().fileName(file).open();
            ShimH2Database.store = store;
            return store;
        }

        @Override
        protected MongoDatabase openOrCreateDatabase(String databaseName) {
            return new ShimH2Database(databaseName, getCursorRegistry());
        }

        @Override
        public Document handleCommand(Channel channel, String database, String command, Document query) {
            return shim(command, super.handleCommand(channel, database, commandFor(command), query));
        }
    }

    public static void main(String[] args) throws Exception {
        String host = "127.0.0.1";
        int port = 27017;
        String backendName = "memory";
        String data = null;
        String version = "5.0";
        boolean oplog = true;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--host": host = args[++i]; break;
                case "--port": port = Integer.parseInt(args[++i]); break;
                case "--backend": backendName = args[++i]; break;
                case "--data": data = args[++i]; break;
                case "--version": version = args[++i]; break;
                case "--no-oplog": oplog = false; break;
                case "--repl-set-name": replSetName = args[++i]; break;
                default:
                    System.err.println("unknown argument: " + args[i]);
                    System.exit(2);
            }
        }
        me = host + ":" + port;
        MongoBackend backend;
        if (backendName.equals("h2")) {
            if (data == null) {
                System.err.println("--backend h2 needs --data FILE");
                System.exit(2);
            }
            backend = new ShimH2Backend(data);
        } else {
            backend = new ShimMemoryBackend();
        }
        // mongo-java-server 1.47's ServerVersion enum tops out at MONGO_5_0 but reports
        // wire version 8 for it, below the Go driver v2 minimum (9 = MongoDB 4.4). So we
        // pass our own MongoVersion: the reported version string and wire version.
        MongoVersion sv;
        switch (version) {
            case "3.6": sv = ServerVersion.MONGO_3_6; break;
            case "4.0": sv = ServerVersion.MONGO_4_0; break;
            case "4.4": sv = new Version(List.of(4, 4, 0), 9); break;
            case "6.0": sv = new Version(List.of(6, 0, 0), 17); break;
            default: sv = new Version(List.of(5, 0, 0), 13); break;
        }
        backend.version(sv);
        MongoServer server = new MongoServer(backend);
        if (oplog) {
            server.enableOplog();
        }
        server.bind(host, port);
        System.out.println("mongo-java-server listening on " + host + ":" + port
                + " backend=" + backendName + " version=" + sv.toVersionString() + " wire=" + sv.getWireVersion()
                + " oplog=" + oplog + " replSetName=" + replSetName);
        System.out.flush();
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdownNow();
            done.countDown();
        }));
        done.await();
    }
}
