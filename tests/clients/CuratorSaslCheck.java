import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.List;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Id;

/**
 * An Apache Curator client that authenticates with SASL DIGEST-MD5 from the JAAS Client
 * section given by -Djava.security.auth.login.config, creates PATH readable only by the
 * SASL user USER, and reads it back. Prints "read DATA" and exits 0 when that works; any
 * failure (AuthFailed included) throws and exits 1.
 *
 * Usage: CuratorSaslCheck CONNECT PATH USER
 */
public final class CuratorSaslCheck {
    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String path = args[1];
        String user = args[2];
        try (CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(connect)
                .retryPolicy(new RetryOneTime(500))
                .sessionTimeoutMs(10000)
                .connectionTimeoutMs(10000)
                .build()) {
            client.start();
            client.blockUntilConnected();
            List<ACL> acl = Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("sasl", user)));
            client.create().withACL(acl).forPath(path, "curator".getBytes(StandardCharsets.UTF_8));
            byte[] data = client.getData().forPath(path);
            System.out.println("read " + new String(data, StandardCharsets.UTF_8));
        }
    }
}
