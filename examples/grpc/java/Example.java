// engram-ops' gRPC API from Java 17 with Debian's libgrpc-java (Netty
// transport from libnetty-java). The engram.v1 classes are generated from
// proto/engram/v1 by run.sh (protoc with protoc-gen-grpc-java), so they
// always match the .proto files. Reads ENGRAM_GRPC_ADDR (default
// 127.0.0.1:50051), ENGRAM_API_KEY (a write key, when auth.mode =
// "api_key") and ENGRAM_SPACE (default example-grpc-java); exits non-zero
// on any unexpected answer.

import com.google.protobuf.Timestamp;
import engram.v1.EngramServiceGrpc;
import engram.v1.MemoryOuterClass.Confidence;
import engram.v1.MemoryOuterClass.Cue;
import engram.v1.MemoryOuterClass.Episode;
import engram.v1.MemoryOuterClass.Memory;
import engram.v1.MemoryOuterClass.SemanticCue;
import engram.v1.Service.AssociateRequest;
import engram.v1.Service.AssociationType;
import engram.v1.Service.ExperienceRequest;
import engram.v1.Service.ExperienceResponse;
import engram.v1.Service.ForgetRequest;
import engram.v1.Service.RecallRequest;
import engram.v1.Service.RecallResponse;
import engram.v1.Service.RememberRequest;
import engram.v1.Service.RememberResponse;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

public class Example {
    static final String ADDR = env("ENGRAM_GRPC_ADDR", "127.0.0.1:50051");
    static final String KEY = env("ENGRAM_API_KEY", "");
    static final String SPACE = env("ENGRAM_SPACE", "example-grpc-java");

    static String env(String name, String def) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? def : v;
    }

    static void say(String format, Object... args) {
        System.out.println(String.format(Locale.ROOT, format, args));
    }

    /** INVALID_ARGUMENT -> InvalidArgument, as Go's codes.Code prints it. */
    static String codeName(Status.Code code) {
        StringBuilder b = new StringBuilder();
        for (String w : code.name().split("_")) {
            b.append(w.charAt(0)).append(w.substring(1).toLowerCase(Locale.ROOT));
        }
        return b.toString();
    }

    public static void main(String[] args) throws Exception {
        ManagedChannel channel = ManagedChannelBuilder.forTarget(ADDR).usePlaintext().build();
        try {
            calls(channel);
        } catch (StatusRuntimeException e) {
            System.err.println("error: " + e.getStatus().getCode() + " " + e.getStatus().getDescription());
            System.exit(1);
        } finally {
            channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
    }

    static void calls(ManagedChannel channel) throws Exception {
        // The API key travels in the authorization metadata, as over REST.
        Metadata md = new Metadata();
        if (!KEY.isEmpty()) {
            md.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + KEY);
        }
        EngramServiceGrpc.EngramServiceBlockingStub stub = EngramServiceGrpc.newBlockingStub(channel)
                .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md));
        EngramServiceGrpc.EngramServiceStub async = EngramServiceGrpc.newStub(channel)
                .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md));

        // Remember with a confidence and tags, in a space of our own.
        remember(stub, "deploy-failed", "the deploy of the billing service failed because the disk was full", 0.9f,
                List.of("ops", "incident"));
        remember(stub, "disk-alert", "an alert fires when a data disk is above 90 percent", 0.8f, List.of("ops"));

        // An episode: what happened, when, where, who.
        Instant now = Instant.now();
        ExperienceResponse ep = stub.withDeadlineAfter(30, TimeUnit.SECONDS).experience(ExperienceRequest.newBuilder()
                .setMemorySpaceId(SPACE)
                .setEpisode(Episode.newBuilder().setId("postmortem").setWhat("postmortem meeting about the billing outage")
                        .setWhen(Timestamp.newBuilder().setSeconds(now.getEpochSecond()).setNanos(now.getNano()))
                        .setWhereLocation("room 4").addAllWho(List.of("ana", "bo")).setImportance(0.7f))
                .build());
        say("experienced %s", ep.getEpisodeId());

        // An association, so that spreading activation can reach the alert.
        stub.withDeadlineAfter(30, TimeUnit.SECONDS).associate(AssociateRequest.newBuilder().setMemorySpaceId(SPACE)
                .setSourceMemory("deploy-failed").setTargetMemory("disk-alert").setStrength(0.8f)
                .setAssociationType(AssociationType.ASSOCIATION_TYPE_CAUSAL).build());
        say("associated deploy-failed -> disk-alert");

        // Recall by a partial cue with spreading activation: direct matches,
        // then memories reached through associations.
        RecallResponse rec = stub.withDeadlineAfter(30, TimeUnit.SECONDS).recall(RecallRequest.newBuilder()
                .setMemorySpaceId(SPACE).setTraceActivation(true)
                .setCue(Cue.newBuilder().setSpreadActivation(true)
                        .setSemantic(SemanticCue.newBuilder().setQuery("billing deploy failed")))
                .build());
        int vivid = 0, associated = 0;
        for (int i = 0; i < rec.getMemoriesCount(); i++) {
            Memory m = rec.getMemories(i);
            String kind = "vivid";
            if (i < rec.getTracesCount() && rec.getTraces(i).getActivationPathCount() > 1) {
                kind = "associated";
                associated++;
            } else {
                vivid++;
            }
            say("  %-10s %s (%.2f)", kind, m.getId(), m.getConfidence().getValue());
        }
        say("recall: %d vivid, %d associated", vivid, associated);

        // A batch over one stream: one answer per memory, in order.
        CompletableFuture<Integer> done = new CompletableFuture<>();
        StreamObserver<RememberRequest> batch = async.withDeadlineAfter(30, TimeUnit.SECONDS)
                .streamingRemember(new StreamObserver<RememberResponse>() {
                    int n;

                    public void onNext(RememberResponse res) {
                        n++;
                    }

                    public void onError(Throwable t) {
                        done.completeExceptionally(t);
                    }

                    public void onCompleted() {
                        done.complete(n);
                    }
                });
        for (int i = 0; i < 3; i++) {
            batch.onNext(RememberRequest.newBuilder().setMemorySpaceId(SPACE).setMemory(Memory.newBuilder()
                    .setId("batch-" + i).setContent("imported note number " + i)).build());
        }
        batch.onCompleted();
        int n;
        try {
            n = done.get();
        } catch (java.util.concurrent.ExecutionException e) {
            throw e.getCause() instanceof StatusRuntimeException s ? s : e;
        }
        say("batch: %d remembered", n);

        // Forget one memory.
        stub.withDeadlineAfter(30, TimeUnit.SECONDS).forget(ForgetRequest.newBuilder().setMemorySpaceId(SPACE)
                .setMemoryId("batch-0").build());
        say("forgot batch-0");

        // A bad request: the status carries REST's error code and message.
        try {
            stub.withDeadlineAfter(30, TimeUnit.SECONDS).remember(RememberRequest.newBuilder().setMemorySpaceId(SPACE)
                    .setMemory(Memory.newBuilder().setContent(" ")).build());
            System.err.println("Remember of blank content: accepted, want INVALID_ARGUMENT");
            System.exit(1);
        } catch (StatusRuntimeException e) {
            say("refused: %s %s", codeName(e.getStatus().getCode()), e.getStatus().getDescription());
        }
    }

    static void remember(EngramServiceGrpc.EngramServiceBlockingStub stub, String id, String content, float conf,
            List<String> tags) {
        RememberResponse res = stub.withDeadlineAfter(30, TimeUnit.SECONDS).remember(RememberRequest.newBuilder()
                .setMemorySpaceId(SPACE)
                .setMemory(Memory.newBuilder().setId(id).setContent(content).addAllTags(tags)
                        .setConfidence(Confidence.newBuilder().setValue(conf)))
                .build());
        say("remembered %s (confidence %.2f)", res.getMemoryId(), res.getStorageConfidence().getValue());
    }
}
