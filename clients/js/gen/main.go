// Command gen writes the Arrow Flight and Flight SQL service definitions as
// a protobuf FileDescriptorSet, built from the descriptors arrow-go compiles
// in: the JavaScript client loads them at run time (proto-loader's
// loadFileDescriptorSetFromBuffer) instead of keeping a copy of the .proto
// files in the repository.
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	pb "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
)

func main() {
	out := flag.String("o", "flight.pb", "the FileDescriptorSet file to write")
	flag.Parse()
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	// Dependencies first, as protoc orders a set.
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(pb.File_Flight_proto)
	add(pb.File_FlightSql_proto)
	// Flight SQL commands travel Any-packed.
	add(anypb.File_google_protobuf_any_proto)
	b, err := proto.Marshal(set)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
}
