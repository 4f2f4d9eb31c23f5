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
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;

import java.util.List;
import java.util.concurrent.CountDownLatch;

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
        public Document handleCommand(Channel channel, String database, String command, Document query) {
            return shim(command, super.handleCommand(channel, database, commandFor(command), query));
        }
    }

    static final class ShimH2Backend extends H2Backend {
        ShimH2Backend(String file) {
            super(file);
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
