// File: model_card_sections.h
// Internal to model_card.cc: the Markdown sections of the model card
// (docs/governance_formats.md), one function per section. Each returns the section with its
// "## " heading and a trailing blank line; every input string is escaped (markup.h).
#ifndef TESSERA_CORE_GOVERNANCE_MODEL_CARD_SECTIONS_H_
#define TESSERA_CORE_GOVERNANCE_MODEL_CARD_SECTIONS_H_

#include <string>

#include "core/governance/export_inputs.h"

namespace tessera::governance::card_internal {

std::string TrainingProcedureSection(const ExportInputs& inputs);
std::string ParticipantsSection(const ExportInputs& inputs);
std::string PrivacySection(const ExportInputs& inputs);
std::string EvaluationSection(const ExportInputs& inputs);
std::string LimitationsSection(const ExportInputs& inputs);

}  // namespace tessera::governance::card_internal

#endif  // TESSERA_CORE_GOVERNANCE_MODEL_CARD_SECTIONS_H_
