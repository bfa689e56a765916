"""The loss limit names the first bad line: a file refused for losing too many calls (--max-skip-fraction),
under --on-error skip as under stop, says at which file:line its first lost call is and why, so a lab can
look at it at once (QA #31: REFMIS0001.vcf, 24 % wrong REF, was refused without a line)."""

from __future__ import annotations

import pysam
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.encoder.predictor import read_inputs
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.genomics.variants import InputError
from tests.test_ingest_failures import ref_mismatch_vcf


def first_wrong_ref(vcf, fasta) -> int:
    """The file line of the first record whose REF is not the FASTA's base there (worked out here from the
    text, not by the package)."""
    genome = pysam.FastaFile(str(fasta))
    for number, text in enumerate(vcf.read_text().splitlines(), 1):
        if text.startswith("#"):
            continue
        chrom, pos, _, ref = text.split("\t")[:4]
        if genome.fetch(chrom, int(pos) - 1, int(pos)).upper() != ref:
            return number
    raise AssertionError("no wrong REF in the file")


@pytest.mark.parametrize("on_error", ["skip", "stop"])
def test_a_file_over_the_loss_limit_names_its_first_lost_line(tmp_path, on_error):
    """10 of 40 REF mismatches: ingest and predict name the first such line, file:line and the reason."""
    vcf, fasta = ref_mismatch_vcf(tmp_path)
    line = first_wrong_ref(vcf, fasta)
    said = f"First bad line: {vcf}:{line} (ref_mismatch: REF differs from the reference)"
    with pytest.raises(InputError, match="10 of 40 calls lost") as err:
        ingest([vcf], fasta, None, tmp_path / "c.h5ad", IngestOptions(on_error=on_error))
    assert said in str(err.value), str(err.value)
    with pytest.raises(InputError, match="10 of 40 calls lost") as err:
        read_inputs([vcf], fasta, on_error=on_error)
    assert said in str(err.value), str(err.value)


def test_a_damaged_file_names_its_malformed_line_when_it_comes_first(tmp_path):
    """Under --on-error skip a damaged file's malformed lines are skipped and not counted as lost, but when
    the file is refused for its other losses and a malformed line comes before the first of them, that line
    is the first bad one: named with what is wrong there, as the skip notes name it."""
    vcf, fasta = ref_mismatch_vcf(tmp_path)
    lines = vcf.read_text().splitlines(keepends=True)
    first = first_wrong_ref(vcf, fasta)
    broken = "1\tabc\t.\tA\tC\t.\tPASS\t.\tGT\t0/0\t0/1\n"  # POS is not a number
    vcf.write_text("".join(lines[: first - 1]) + broken + "".join(lines[first - 1:]))
    res = CliRunner().invoke(app, ["ingest", str(vcf), "-r", str(fasta), "-o", str(tmp_path / "c.h5ad"),
                                   "--on-error", "skip"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "10 of 41 calls lost" in said, res.output
    assert f"First bad line: {vcf}:{first} (malformed_line: malformed VCF record (POS 'abc' is not a whole " \
           "number))" in said, said


def test_no_carrier_losses_name_their_first_line(tmp_path):
    """Calls the tumour column does not carry (the reader's skips, before classification; no reference:
    the allele-only classifier) name their first line too."""
    from tests.test_ingest_somatic import MUTECT2_META, write

    gt = ["0/1"] * 5 + ["0/0"] * 15  # the tumour carries the first five calls only
    rows = [f"1\t{1000 + 10 * i}\t.\tC\tT\t.\tPASS\t.\tGT\t0/0\t{g}" for i, g in enumerate(gt)]
    write(tmp_path / "p1.vcf", MUTECT2_META, ["P1-N", "P1-T"], rows)
    text = (tmp_path / "p1.vcf").read_text().splitlines()
    line = next(n for n, t in enumerate(text, 1) if t.startswith("1\t1050\t"))
    with pytest.raises(InputError, match=r"15 of 20 calls lost \(75%: no_carrier 15\)") as err:
        ingest([tmp_path / "p1.vcf"], None, None, tmp_path / "c.h5ad", IngestOptions(on_error="skip"))
    said = f"First bad line: {tmp_path / 'p1.vcf'}:{line} (no_carrier: ALT carried by no sample"
    assert said in str(err.value), str(err.value)


def test_too_many_calls_on_missing_contigs_name_the_first_of_them(two_contig_genome, tmp_path):
    """The same limit on calls on contigs the FASTA lacks (a wrong reference?) names the first such call."""
    from tests.test_ingest_missing_contigs import MT, snvs, write_vcf

    fasta, seqs = two_contig_genome
    write_vcf(tmp_path / "A.vcf", snvs(seqs, "1", 5) + MT + snvs(seqs, "1", 5, start=9_000))
    text = (tmp_path / "A.vcf").read_text().splitlines()
    line = next(n for n, t in enumerate(text, 1) if t.startswith("MT"))
    with pytest.raises(InputError, match=r"2 of 12 calls \(17%\) are on contigs the reference lacks") as err:
        ingest([tmp_path / "A.vcf"], fasta, None, tmp_path / "c.h5ad", IngestOptions(on_error="skip"))
    assert str(err.value).endswith(f". First call there: {tmp_path / 'A.vcf'}:{line}"), str(err.value)
