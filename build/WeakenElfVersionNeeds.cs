// An MSBuild task (compiled by RoslynCodeTaskFactory, see Directory.Build.targets) that marks chosen
// version requirements of an ELF shared library as weak.
//
// Why: TorchSharp 0.107's libLibTorchSharp.so was linked against GCC 13's libstdc++ and records a need
// for GLIBCXX_3.4.32 only because of the marker symbol _ZSt21ios_base_library_initv, which nothing
// calls (no relocation references it). Debian 12, Ubuntu 22.04 and RHEL 9 ship an older libstdc++, so
// dlopen refuses the library outright. Setting VER_FLG_WEAK on that one requirement turns the hard
// failure into a warning the loader ignores; hosts that do have the version bind exactly as before.
//
// The task only ever edits copies in build or publish output (never the NuGet cache), changes the
// two flag bytes of the matching Vernaux entries and nothing else, and leaves a file that is already
// patched untouched, so it is idempotent and cheap to run on every build. The tests compile this file
// with ELF_PATCHER_WITHOUT_TASK to check the patcher without MSBuild's assemblies.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
#if !ELF_PATCHER_WITHOUT_TASK
using Microsoft.Build.Framework;
#endif

namespace Orchestrator.Build
{
#if !ELF_PATCHER_WITHOUT_TASK
    public sealed class WeakenElfVersionNeeds : Microsoft.Build.Utilities.Task
    {
        /// <summary>The shared libraries to patch in place.</summary>
        [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

        /// <summary>Version names to weaken, separated by ';' (e.g. GLIBCXX_3.4.32).</summary>
        [Required] public string Versions { get; set; } = "";

        public override bool Execute()
        {
            var versions = Versions.Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries);
            foreach (var item in Files)
            {
                try
                {
                    var changed = ElfVersionPatcher.Weaken(item.ItemSpec, versions);
                    if (changed.Count > 0)
                        Log.LogMessage(MessageImportance.High, $"Weakened {string.Join(", ", changed)} in {item.ItemSpec}");
                }
                catch (Exception e) when (e is InvalidDataException || e is IOException)
                {
                    Log.LogError($"Could not patch ELF version needs of {item.ItemSpec}: {e.Message}");
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif

    /// <summary>Reads the .gnu.version_r section of an ELF64 little-endian file and sets VER_FLG_WEAK.</summary>
    public static class ElfVersionPatcher
    {
        const uint ShtGnuVerneed = 0x6ffffffe;
        const ushort VerFlagWeak = 0x2;

        /// <summary>Weakens the named version needs; returns the names that were changed (empty when none).</summary>
        public static List<string> Weaken(string path, ICollection<string> versions)
        {
            var bytes = File.ReadAllBytes(path);
            var changed = WeakenInMemory(bytes, versions);
            if (changed.Count > 0)
            {
                // Write beside and rename so an interrupted build never leaves a torn library.
                var temp = path + ".weaken.tmp";
                File.WriteAllBytes(temp, bytes);
                File.Replace(temp, path, null);
            }
            return changed;
        }

        /// <summary>The same on a byte image, for callers that already hold the file.</summary>
        public static List<string> WeakenInMemory(byte[] elf, ICollection<string> versions)
        {
            var changed = new List<string>();
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException("only 64-bit little-endian ELF files are supported");

            long shoff = Read64(elf, 0x28);
            int shentsize = Read16(elf, 0x3A), shnum = Read16(elf, 0x3C);
            Check(elf, shoff, (long)shentsize * shnum, "section header table");

            for (int i = 0; i < shnum; i++)
            {
                long sh = shoff + (long)i * shentsize;
                if (Read32(elf, sh + 4) != ShtGnuVerneed) continue;
                long offset = Read64(elf, sh + 0x18), size = Read64(elf, sh + 0x20);
                int link = (int)Read32(elf, sh + 0x28);
                Check(elf, offset, size, ".gnu.version_r");
                long strSh = shoff + (long)link * shentsize;
                long strOffset = Read64(elf, strSh + 0x18), strSize = Read64(elf, strSh + 0x20);
                Check(elf, strOffset, strSize, "version string table");

                // Verneed entries: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32.
                long need = offset;
                for (int guard = 0; guard < 4096; guard++)
                {
                    int count = Read16(elf, need + 2);
                    long aux = need + Read32(elf, need + 8);
                    // Vernaux entries: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
                    for (int a = 0; a < count; a++)
                    {
                        Check(elf, aux, 16, "Vernaux entry");
                        var name = ReadString(elf, strOffset + Read32(elf, aux + 8), strOffset + strSize);
                        int flags = Read16(elf, aux + 4);
                        if (versions.Contains(name) && (flags & VerFlagWeak) == 0)
                        {
                            Write16(elf, aux + 4, (ushort)(flags | VerFlagWeak));
                            changed.Add(name);
                        }
                        uint nextAux = Read32(elf, aux + 12);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }
                    uint next = Read32(elf, need + 12);
                    if (next == 0) break;
                    need += next;
                    Check(elf, need, 16, "Verneed entry");
                }
            }
            return changed;
        }

        static void Check(byte[] elf, long offset, long size, string what)
        {
            if (offset < 0 || size < 0 || offset + size > elf.Length)
                throw new InvalidDataException($"{what} lies outside the file (offset {offset}, size {size})");
        }

        static string ReadString(byte[] elf, long start, long end)
        {
            long stop = start;
            while (stop < end && elf[stop] != 0) stop++;
            return Encoding.ASCII.GetString(elf, (int)start, (int)(stop - start));
        }

        static ushort Read16(byte[] b, long o) => BitConverter.ToUInt16(b, (int)o);
        static uint Read32(byte[] b, long o) => BitConverter.ToUInt32(b, (int)o);
        static long Read64(byte[] b, long o) => (long)BitConverter.ToUInt64(b, (int)o);
        static void Write16(byte[] b, long o, ushort v) { b[o] = (byte)v; b[o + 1] = (byte)(v >> 8); }
    }
}
