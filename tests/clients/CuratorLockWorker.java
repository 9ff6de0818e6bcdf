import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryForever;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

/**
 * Apache Curator clients that keep working while the ensemble they talk to changes under
 * them: two clients, each with its own session, take turns holding an InterProcessMutex
 * and, while holding it, increment a counter node with a compare-and-set (setData with the
 * version just read), writing their name beside the count. Curator retries an operation
 * whose connection broke, so a BadVersion whose node already holds exactly the update sent
 * is that update, applied before the retry; any other BadVersion means two clients held
 * the lock at once and fails the run. When STOP_FILE appears the counter must hold exactly
 * the increments the clients made. Prints "increments N counter C"; exits 0 when that
 * holds, 1 otherwise, 2 if a session was lost.
 *
 * Usage: CuratorLockWorker CONNECT STOP_FILE
 */
public class CuratorLockWorker {
    static final String COUNTER = "/migration/curator-counter";
    static final String LOCK = "/migration/curator-lock";

    static long countOf(byte[] data) {
        String text = new String(data, StandardCharsets.UTF_8).trim();
        return text.isEmpty() ? 0 : Long.parseLong(text.split(" ")[0]);
    }

    static class Worker extends Thread {
        final CuratorFramework client;
        final Path stop;
        final String name;
        final AtomicBoolean lost = new AtomicBoolean();
        long acked;
        String failure;

        Worker(String connect, Path stop, String name) {
            this.stop = stop;
            this.name = name;
            this.client = CuratorFrameworkFactory.builder()
                    .connectString(connect)
                    .sessionTimeoutMs(15000)
                    .connectionTimeoutMs(15000)
                    .retryPolicy(new RetryForever(100))
                    .build();
            client.getConnectionStateListenable().addListener((c, state) -> {
                if (state == ConnectionState.LOST) {
                    lost.set(true);
                }
            });
        }

        @Override
        public void run() {
            try {
                client.start();
                if (!client.blockUntilConnected(60, TimeUnit.SECONDS)) {
                    failure = "no connection within 60 s";
                    return;
                }
                try {
                    client.create().creatingParentsIfNeeded().forPath(COUNTER, new byte[0]);
                } catch (KeeperException.NodeExistsException exists) {
                    // The other client made it.
                }
                InterProcessMutex lock = new InterProcessMutex(client, LOCK);
                while (!Files.exists(stop) && !lost.get()) {
                    if (!lock.acquire(10, TimeUnit.SECONDS)) {
                        continue;
                    }
                    try {
                        Stat stat = new Stat();
                        byte[] data = client.getData().storingStatIn(stat).forPath(COUNTER);
                        byte[] update = ((countOf(data) + 1) + " " + name).getBytes(StandardCharsets.UTF_8);
                        try {
                            client.setData().withVersion(stat.getVersion()).forPath(COUNTER, update);
                        } catch (KeeperException.BadVersionException changed) {
                            byte[] now = client.getData().forPath(COUNTER);
                            if (!java.util.Arrays.equals(now, update)) {
                                failure = "the counter changed under the lock: "
                                        + new String(now, StandardCharsets.UTF_8);
                                return;
                            }
                        }
                        acked++;
                    } finally {
                        lock.release();
                    }
                }
            } catch (Exception error) {
                failure = error.toString();
            }
        }
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        Path stop = Paths.get(args[1]);
        List<Worker> workers = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            workers.add(new Worker(connect, stop, "curator-" + i));
        }
        for (Worker worker : workers) {
            worker.start();
        }
        for (Worker worker : workers) {
            worker.join();
        }
        int status = 0;
        for (Worker worker : workers) {
            if (worker.lost.get()) {
                System.out.println("a session was lost");
                status = 2;
            } else if (worker.failure != null) {
                System.out.println(worker.failure);
                status = Math.max(status, 1);
            }
        }
        if (status == 0) {
            long counter = countOf(workers.get(0).client.getData().forPath(COUNTER));
            long acked = workers.stream().mapToLong(w -> w.acked).sum();
            System.out.println("increments " + acked + " counter " + counter);
            status = acked > 0 && acked == counter ? 0 : 1;
        }
        for (Worker worker : workers) {
            worker.client.close();
        }
        System.exit(status);
    }
}
